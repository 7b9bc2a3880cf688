// Elementwise unary op out = OP(x), with two scalar parameters alpha and beta available to OP.
// Layout: any (contiguous). Workgroup: 256 threads, one element each, grid folded into 2-D when large.
// Variants: OP is a WGSL expression in `x`, `alpha`, `beta` (e.g. "alpha * x + beta").

struct Params {
  n: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;

fn op(x: f32, alpha: f32, beta: f32) -> f32 { return ${OP}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Out[i] = op(X[i], p.alpha, p.beta);
}
