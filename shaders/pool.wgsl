// Windowed 2-D pooling on NCHW tensors, one thread per element, and the gradients as gathers.
// Layout: NCHW, contiguous; a "plane" is one (n, c) image of in_h × in_w (or out_h × out_w).
// Window of output (oy, ox): rows oy·s_h − pad_t … + k_h − 1, cols ox·s_w − pad_l … + k_w − 1
// (input coordinates; rows/cols outside [0, in) are padding).
// Workgroup: 256 threads, one element each; the grid may be folded into 2-D (flat index =
// gid.x + gid.y · num_workgroups.x · 256).
// Entry points (one pipeline each; bindings: 1 = Src, 2 = Dst, 3 = Switches):
//   max_forward  Src = x, Dst = y, Switches = argmax (written). Thread per output. Padding is −∞:
//                only real inputs are scanned, in row-major window order, with a strict `>`, so
//                ties go to the first index. The switch is the flat index iy·in_w + ix in the
//                input plane. A window with no real input (only when padding ≥ kernel) gives
//                y = 0 and switch = −1.
//   max_unpool   Src = dy, Dst = dx, Switches = argmax (read). Thread per INPUT element: it sums
//                dy over the (few) windows containing it whose switch points at it. A gather: no
//                atomics, deterministic, exact for overlapping windows (stride < kernel).
//   avg_forward  Src = x, Dst = y. Divisor (PyTorch rule): count_include_pad ≠ 0 → the window
//                clipped to the padded input [−pad_t, in_h + pad_b) × [−pad_l, in_w + pad_r);
//                else the number of real inputs in the window (TF 'SAME'). Divisor 0 → y = 0.
//   avg_backward Src = dy, Dst = dx. Thread per input element: Σ dy / divisor over its windows.

struct Params {
  n: u32,           // number of threads (outputs for the forwards, inputs for the backwards)
  in_h: i32, in_w: i32,
  out_h: i32, out_w: i32,
  k_h: i32, k_w: i32,
  s_h: i32, s_w: i32,
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

// First and one-past-last output index (along one axis) whose window contains input index i.
fn window_range(i: i32, pad: i32, k: i32, s: i32, n_out: i32) -> vec2<i32> {
  let num = i + pad - k + 1;
  var lo = 0;
  if (num > 0) { lo = (num + s - 1) / s; }
  let hi = min((i + pad) / s + 1, n_out);
  return vec2<i32>(lo, hi);
}

// The average-pooling divisor of output (oy, ox).
fn avg_divisor(oy: i32, ox: i32) -> f32 {
  let y0 = oy * p.s_h - p.pad_t;
  let x0 = ox * p.s_w - p.pad_l;
  if (p.count_include_pad != 0u) {
    let y1 = min(y0 + p.k_h, p.in_h + p.pad_b);
    let x1 = min(x0 + p.k_w, p.in_w + p.pad_r);
    return f32(max(y1 - y0, 0) * max(x1 - x0, 0));
  }
  let rows = max(min(y0 + p.k_h, p.in_h) - max(y0, 0), 0);
  let cols = max(min(x0 + p.k_w, p.in_w) - max(x0, 0), 0);
  return f32(rows * cols);
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
  let ye = min(y0 + p.k_h, p.in_h);
  let xs = max(x0, 0);
  let xe = min(x0 + p.k_w, p.in_w);
  var best = 0.0;
  var arg = -1;
  for (var y = max(y0, 0); y < ye; y++) {
    for (var x = xs; x < xe; x++) {
      let k = y * p.in_w + x;
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
  let ry = window_range(iy, p.pad_t, p.k_h, p.s_h, p.out_h);
  let rx = window_range(ix, p.pad_l, p.k_w, p.s_w, p.out_w);
  var sum = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) {
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
  let ye = min(y0 + p.k_h, p.in_h);
  let xs = max(x0, 0);
  let xe = min(x0 + p.k_w, p.in_w);
  var sum = 0.0;
  for (var y = max(y0, 0); y < ye; y++) {
    for (var x = xs; x < xe; x++) {
      sum += Src[base + u32(y * p.in_w + x)];
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
  let ry = window_range(iy, p.pad_t, p.k_h, p.s_h, p.out_h);
  let rx = window_range(ix, p.pad_l, p.k_w, p.s_w, p.out_w);
  var sum = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) {
      // A window containing a real input always has a divisor ≥ 1.
      sum += Src[base + u32(oy * p.out_w + ox)] / avg_divisor(oy, ox);
    }
  }
  Dst[i] = sum;
}
