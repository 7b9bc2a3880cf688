// PRelu (ONNX): y = x for x > 0, slope·x otherwise, with the slope broadcast to x's shape
// (unidirectional NumPy broadcasting, e.g. slope [C, 1, 1] against NCHW x), and its gradients.
// At x = 0 the derivative is taken from the negative side (dx = slope·g), as PyTorch does.
// Layout: X, G, Y, Dx and T contiguous with x's shape; Slope read through per-dimension strides
// (0 on broadcast dimensions) of x's shape right-aligned in rank 6.
// Workgroup: 256 threads, one element of x each; the grid may be folded into 2-D (flat index =
// gid.x + gid.y · num_workgroups.x · 256).
// Entry points:
//   forward   X, Slope → Out = y.
//   backward  X, Slope, G → Out = dx = g · (x > 0 ? 1 : slope); with SLOPE_GRAD also
//             T = g · x · 1[x ≤ 0], which the wrapper sums back to the slope's shape.
// Variants: SLOPE_GRAD (backward also writes T).

struct Params {
  shape_lo: vec4<u32>, shape_hi: vec4<u32>,   // x's shape, right-aligned in rank 6
  slope_lo: vec4<u32>, slope_hi: vec4<u32>,   // slope's element strides per dimension of x (0 = broadcast)
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Slope: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
@group(0) @binding(4) var<storage, read> G: array<f32>;
#if ${SLOPE_GRAD}
@group(0) @binding(5) var<storage, read_write> T: array<f32>;
#endif

// The slope applying to element i of x.
fn slope_at(i: u32) -> f32 {
  let shape = array<u32, 6>(p.shape_lo.x, p.shape_lo.y, p.shape_lo.z, p.shape_lo.w, p.shape_hi.x, p.shape_hi.y);
  let strides = array<u32, 6>(p.slope_lo.x, p.slope_lo.y, p.slope_lo.z, p.slope_lo.w, p.slope_hi.x, p.slope_hi.y);
  var rest = i;
  var k = 0u;
  for (var d = 5; d >= 0; d--) {
    k += (rest % shape[d]) * strides[d];
    rest = rest / shape[d];
  }
  return Slope[k];
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let x = X[i];
  Out[i] = select(slope_at(i) * x, x, x > 0.0);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let x = X[i];
  let g = G[i];
  Out[i] = select(slope_at(i) * g, g, x > 0.0);
#if ${SLOPE_GRAD}
  T[i] = select(g * x, 0.0, x > 0.0);
#endif
}
