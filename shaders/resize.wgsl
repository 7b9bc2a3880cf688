// 2-D resize (bilinear or nearest) of the last two dimensions, and its exact adjoint (the gradient).
// Layout: [..., H, W] contiguous (NCHW: a "plane" is one (n, c) image); out is [..., out_h, out_w].
// Workgroup: 256 threads, one element each, grid folded into 2-D (flat index =
// gid.x + gid.y · num_workgroups.x · 256).
//
// Source coordinate of output index o along an axis of size in → out, src = o·a + b:
//   half-pixel centres (align_corners = false, the default):
//     a = in / out, b = a/2 − 1/2, i.e. src = (o + 0.5)·in/out − 0.5
//   align_corners = true:  a = (in − 1)/(out − 1) (0 when out = 1), b = 0
//   TF legacy (align_corners = half_pixel_centers = false): a = in / out, b = 0
// Bilinear (PyTorch F.interpolate(mode='bilinear'), TF half_pixel_centers / align_corners):
//   s = max(src, 0), i0 = floor(s), i1 = min(i0 + 1, in − 1), λ = s − i0;
//   value = (1 − λ)·x[i0] + λ·x[i1] along each axis (separable).
// Nearest, computed exactly in integers as i = min((o·P + Q) / R, in − 1):
//   half-pixel:    i = floor((o + 0.5)·in/out)              (P = 2·in, Q = in, R = 2·out;
//                  PyTorch 'nearest-exact', TF half_pixel_centers)
//   align_corners: i = round(o·(in − 1)/(out − 1)), halves up (P = 2(in − 1), Q = out − 1,
//                  R = 2(out − 1); P = Q = 0, R = 1 when out = 1)
//   TF legacy:     i = floor(o·in/out)                      (P = in, Q = 0, R = out)
//
// Entry points (bindings: 1 = Src, 2 = Dst):
//   forward   Src = x, Dst = y; one thread per output element.
//   backward  Src = dy, Dst = dx; one thread per INPUT element, a gather over the outputs that
//             sample it: a conservative output range from the inverse map (src ∈ [i − 1, i + 1],
//             widened by one), in which the forward weights are recomputed by the same code, so
//             the result is the exact adjoint of `forward`. No atomics; deterministic.
// Variants: NEAREST (true: nearest, false: bilinear).

struct Params {
  n: u32,                        // number of threads (outputs for forward, inputs for backward)
  in_h: u32, in_w: u32,
  out_h: u32, out_w: u32,
  a_y: f32, b_y: f32,            // src = o·a + b
  a_x: f32, b_x: f32,
  p_y: u32, q_y: u32, r_y: u32,  // nearest: i = (o·P + Q) / R
  p_x: u32, q_x: u32, r_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Src: array<f32>;
@group(0) @binding(2) var<storage, read_write> Dst: array<f32>;

// The two taps and the weight of the second along one axis.
struct Taps {
  i0: u32,
  i1: u32,
  w1: f32,
}

fn taps(o: u32, a: f32, b: f32, pp: u32, q: u32, r: u32, n_in: u32) -> Taps {
#if ${NEAREST}
  let i = min((o * pp + q) / r, n_in - 1u);
  return Taps(i, i, 0.0);
#else
  let s = max(f32(o) * a + b, 0.0);
  let i0 = min(u32(floor(s)), n_in - 1u);
  let i1 = min(i0 + 1u, n_in - 1u);
  return Taps(i0, i1, s - f32(i0));
#endif
}

fn taps_y(o: u32) -> Taps { return taps(o, p.a_y, p.b_y, p.p_y, p.q_y, p.r_y, p.in_h); }
fn taps_x(o: u32) -> Taps { return taps(o, p.a_x, p.b_x, p.p_x, p.q_x, p.r_x, p.in_w); }

// Weight of input index i in output o's interpolation along one axis.
fn weight(t: Taps, i: u32) -> f32 {
  return select(0.0, 1.0 - t.w1, t.i0 == i) + select(0.0, t.w1, t.i1 == i);
}

// Outputs [lo, hi) along one axis that may sample input index i (conservative).
fn output_range(i: u32, a: f32, b: f32, n_out: u32) -> vec2<u32> {
  if (a <= 0.0) { return vec2<u32>(0u, n_out); }
  let lo = i32(floor((f32(i) - 1.0 - b) / a)) - 1;
  let hi = i32(ceil((f32(i) + 1.0 - b) / a)) + 2;
  return vec2<u32>(u32(clamp(lo, 0, i32(n_out))), u32(clamp(hi, 0, i32(n_out))));
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let ox = i % p.out_w;
  let t = i / p.out_w;
  let oy = t % p.out_h;
  let base = (t / p.out_h) * p.in_h * p.in_w;
  let ty = taps_y(oy);
  let tx = taps_x(ox);
#if ${NEAREST}
  Dst[i] = Src[base + ty.i0 * p.in_w + tx.i0];
#else
  let r0 = base + ty.i0 * p.in_w;
  let r1 = base + ty.i1 * p.in_w;
  let top = (1.0 - tx.w1) * Src[r0 + tx.i0] + tx.w1 * Src[r0 + tx.i1];
  let bottom = (1.0 - tx.w1) * Src[r1 + tx.i0] + tx.w1 * Src[r1 + tx.i1];
  Dst[i] = (1.0 - ty.w1) * top + ty.w1 * bottom;
#endif
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let ix = i % p.in_w;
  let t = i / p.in_w;
  let iy = t % p.in_h;
  let base = (t / p.in_h) * p.out_h * p.out_w;
  let ry = output_range(iy, p.a_y, p.b_y, p.out_h);
  let rx = output_range(ix, p.a_x, p.b_x, p.out_w);
  var sum = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    let wy = weight(taps_y(oy), iy);
    if (wy == 0.0) { continue; }
    let row = base + oy * p.out_w;
    var s = 0.0;
    for (var ox = rx.x; ox < rx.y; ox++) {
      s += weight(taps_x(ox), ix) * Src[row + ox];
    }
    sum += wy * s;
  }
  Dst[i] = sum;
}
