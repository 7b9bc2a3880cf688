// 2-D resize (bilinear or nearest) of the last two dimensions, and its exact adjoint (the gradient).
// Layout: [..., H, W] contiguous (NCHW: a "plane" is one (n, c) image); out is [..., out_h, out_w].
// The coordinate maps come precomputed per axis in Taps (src/kernels/resize.ts computes them for
// every mode: the library's half-pixel / align-corners / TF-legacy maps and ONNX Resize's
// coordinate transformation and nearest modes):
//   at y_taps (out_h entries) and x_taps (out_w entries): i0, i1, bits of w1 — output o reads
//     (1 − w1)·x[i0] + w1·x[i1] along that axis (separable); nearest has i0 = i1 and w1 = 0;
//   at y_range (in_h entries) and x_range (in_w entries): lo, hi — the outputs [lo, hi) whose taps
//     include that input index (contiguous: the taps never decrease along an axis).
// Workgroup: 256 threads, one element each, grid folded into 2-D (flat index =
// gid.x + gid.y · num_workgroups.x · 256).
// Entry points (bindings: 1 = Src, 2 = Dst, 3 = Taps):
//   forward   Src = x, Dst = y; one thread per output element.
//   backward  Src = dy, Dst = dx; one thread per INPUT element, a gather over the outputs in its
//             ranges, with the forward's weights, so the result is the exact adjoint of `forward`.
//             No atomics; deterministic.
// Variants: NEAREST (true: one read per output instead of four).

struct Params {
  n: u32,                  // number of threads (outputs for forward, inputs for backward)
  in_h: u32, in_w: u32,
  out_h: u32, out_w: u32,
  y_taps: u32, x_taps: u32, y_range: u32, x_range: u32,   // offsets into Taps
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Src: array<f32>;
@group(0) @binding(2) var<storage, read_write> Dst: array<f32>;
@group(0) @binding(3) var<storage, read> Taps: array<u32>;

struct Tap {
  i0: u32,
  i1: u32,
  w1: f32,
}

fn tap(at: u32, o: u32) -> Tap {
  let k = at + 3u * o;
  return Tap(Taps[k], Taps[k + 1u], bitcast<f32>(Taps[k + 2u]));
}

// Weight of input index i in a tap.
fn weight(t: Tap, i: u32) -> f32 {
  return select(0.0, 1.0 - t.w1, t.i0 == i) + select(0.0, t.w1, t.i1 == i);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let ox = i % p.out_w;
  let t = i / p.out_w;
  let oy = t % p.out_h;
  let base = (t / p.out_h) * p.in_h * p.in_w;
  let ty = tap(p.y_taps, oy);
  let tx = tap(p.x_taps, ox);
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
  let ylo = Taps[p.y_range + 2u * iy];
  let yhi = Taps[p.y_range + 2u * iy + 1u];
  let xlo = Taps[p.x_range + 2u * ix];
  let xhi = Taps[p.x_range + 2u * ix + 1u];
  var sum = 0.0;
  for (var oy = ylo; oy < yhi; oy++) {
    let wy = weight(tap(p.y_taps, oy), iy);
    if (wy == 0.0) { continue; }
    let row = base + oy * p.out_w;
    var s = 0.0;
    for (var ox = xlo; ox < xhi; ox++) {
      s += weight(tap(p.x_taps, ox), ix) * Src[row + ox];
    }
    sum += wy * s;
  }
  Dst[i] = sum;
}
