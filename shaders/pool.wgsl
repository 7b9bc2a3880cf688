// Windowed 2-D pooling on NCHW tensors, one thread per element, and the gradients as gathers.
// Layout: NCHW, contiguous; a "plane" is one (n, c) image of in_h × in_w (or out_h × out_w).
// Window of output (oy, ox): taps (ky, kx) ∈ [0, k_h) × [0, k_w) at input rows oy·s_h − pad_t + ky·d_h
// and columns ox·s_w − pad_l + kx·d_w (d = dilation; rows/cols outside [0, in) are padding).
// Workgroup: 256 threads, one element each; the grid may be folded into 2-D (flat index =
// gid.x + gid.y · num_workgroups.x · 256).
// Entry points (one pipeline each; bindings: 1 = Src, 2 = Dst, 3 = Switches):
//   max_forward  Src = x, Dst = y, Switches = argmax (written). Thread per output. Padding is −∞:
//                only real inputs are scanned, in row-major tap order (which is increasing input
//                index), with a strict `>`, so ties go to the first index. The switch is the flat
//                index iy·in_w + ix in the input plane. A window with no real input (only when
//                padding ≥ the kernel's span, or dilation steps over the input) gives y = 0 and
//                switch = −1.
//   max_unpool   Src = dy, Dst = dx, Switches = argmax (read). Thread per INPUT element: it sums
//                dy over the windows having a tap on it (at most k_h·k_w, one per tap) whose switch
//                points at it. A gather: no atomics, deterministic, exact for overlapping windows.
//   avg_forward  Src = x, Dst = y. Divisor (PyTorch's and ONNX Runtime's rule): count_include_pad ≠ 0
//                → the taps inside the padded input [−pad_t, in_h + pad_b) × [−pad_l, in_w + pad_r)
//                (so a window hanging past the padding in ceil mode counts only its part inside);
//                else the taps on real inputs (TF 'SAME'). Divisor 0 → y = 0.
//   avg_backward Src = dy, Dst = dx. Thread per input element: Σ dy / divisor over its windows.

struct Params {
  n: u32,           // number of threads (outputs for the forwards, inputs for the backwards)
  in_h: i32, in_w: i32,
  out_h: i32, out_w: i32,
  k_h: i32, k_w: i32,
  s_h: i32, s_w: i32,
  d_h: i32, d_w: i32,
  pad_t: i32, pad_l: i32, pad_b: i32, pad_r: i32,
  count_include_pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Src: array<f32>;
@group(0) @binding(2) var<storage, read_write> Dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> Switches: array<i32>;

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// Taps [t0, t1) of a k-tap window starting at `start` (step d) that land in [0, n).
fn tap_range(start: i32, k: i32, d: i32, n: i32) -> vec2<i32> {
  var t0 = 0;
  if (start < 0) { t0 = (-start + d - 1) / d; }
  var t1 = 0;
  if (n - 1 - start >= 0) { t1 = min(k, (n - 1 - start) / d + 1); }
  return vec2<i32>(t0, max(t1, t0));
}

// The output index (along one axis) whose window has tap t on input index i, or −1.
fn window_of(i: i32, t: i32, pad: i32, s: i32, d: i32, n_out: i32) -> i32 {
  let q = i + pad - t * d;
  if (q < 0 || q % s != 0 || q / s >= n_out) { return -1; }
  return q / s;
}

// The average-pooling divisor of output (oy, ox).
fn avg_divisor(oy: i32, ox: i32) -> f32 {
  let y0 = oy * p.s_h - p.pad_t;
  let x0 = ox * p.s_w - p.pad_l;
  var ry: vec2<i32>;
  var rx: vec2<i32>;
  if (p.count_include_pad != 0u) {
    ry = tap_range(y0 + p.pad_t, p.k_h, p.d_h, p.in_h + p.pad_t + p.pad_b);
    rx = tap_range(x0 + p.pad_l, p.k_w, p.d_w, p.in_w + p.pad_l + p.pad_r);
  } else {
    ry = tap_range(y0, p.k_h, p.d_h, p.in_h);
    rx = tap_range(x0, p.k_w, p.d_w, p.in_w);
  }
  return f32((ry.y - ry.x) * (rx.y - rx.x));
}

@compute @workgroup_size(256)
fn max_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let ox = i32(i % u32(p.out_w));
  let t = i / u32(p.out_w);
  let oy = i32(t % u32(p.out_h));
  let base = (t / u32(p.out_h)) * u32(p.in_h * p.in_w);
  let y0 = oy * p.s_h - p.pad_t;
  let x0 = ox * p.s_w - p.pad_l;
  let ry = tap_range(y0, p.k_h, p.d_h, p.in_h);
  let rx = tap_range(x0, p.k_w, p.d_w, p.in_w);
  var best = 0.0;
  var arg = -1;
  for (var ky = ry.x; ky < ry.y; ky++) {
    for (var kx = rx.x; kx < rx.y; kx++) {
      let k = (y0 + ky * p.d_h) * p.in_w + x0 + kx * p.d_w;
      let v = Src[base + u32(k)];
      if (arg < 0 || v > best) {
        best = v;
        arg = k;
      }
    }
  }
  Dst[i] = best;
  Switches[i] = arg;
}

@compute @workgroup_size(256)
fn max_unpool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let ix = i32(i % u32(p.in_w));
  let t = i / u32(p.in_w);
  let iy = i32(t % u32(p.in_h));
  let base = (t / u32(p.in_h)) * u32(p.out_h * p.out_w);
  let target_index = iy * p.in_w + ix;
  var sum = 0.0;
  for (var ky = 0; ky < p.k_h; ky++) {
    let oy = window_of(iy, ky, p.pad_t, p.s_h, p.d_h, p.out_h);
    if (oy < 0) { continue; }
    for (var kx = 0; kx < p.k_w; kx++) {
      let ox = window_of(ix, kx, p.pad_l, p.s_w, p.d_w, p.out_w);
      if (ox < 0) { continue; }
      let o = base + u32(oy * p.out_w + ox);
      if (Switches[o] == target_index) { sum += Src[o]; }
    }
  }
  Dst[i] = sum;
}

@compute @workgroup_size(256)
fn avg_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let ox = i32(i % u32(p.out_w));
  let t = i / u32(p.out_w);
  let oy = i32(t % u32(p.out_h));
  let base = (t / u32(p.out_h)) * u32(p.in_h * p.in_w);
  let y0 = oy * p.s_h - p.pad_t;
  let x0 = ox * p.s_w - p.pad_l;
  let ry = tap_range(y0, p.k_h, p.d_h, p.in_h);
  let rx = tap_range(x0, p.k_w, p.d_w, p.in_w);
  var sum = 0.0;
  for (var ky = ry.x; ky < ry.y; ky++) {
    let row = (y0 + ky * p.d_h) * p.in_w + x0;
    for (var kx = rx.x; kx < rx.y; kx++) {
      sum += Src[base + u32(row + kx * p.d_w)];
    }
  }
  let d = avg_divisor(oy, ox);
  Dst[i] = select(0.0, sum / d, d > 0.0);
}

@compute @workgroup_size(256)
fn avg_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let ix = i32(i % u32(p.in_w));
  let t = i / u32(p.in_w);
  let iy = i32(t % u32(p.in_h));
  let base = (t / u32(p.in_h)) * u32(p.out_h * p.out_w);
  var sum = 0.0;
  for (var ky = 0; ky < p.k_h; ky++) {
    let oy = window_of(iy, ky, p.pad_t, p.s_h, p.d_h, p.out_h);
    if (oy < 0) { continue; }
    for (var kx = 0; kx < p.k_w; kx++) {
      let ox = window_of(ix, kx, p.pad_l, p.s_w, p.d_w, p.out_w);
      if (ox < 0) { continue; }
      // A window with a tap on a real input always has a divisor ≥ 1.
      sum += Src[base + u32(oy * p.out_w + ox)] / avg_divisor(oy, ox);
    }
  }
  Dst[i] = sum;
}
