// Activation forward: out = act(x), applied elementwise.
// Layout: any (contiguous, e.g. NCHW or [N, features]); out has x's shape.
// Workgroup: 256 threads, one element each; the grid is folded into 2-D when it has > 65,535 groups.
// Variants: ACTIVATION is a WGSL expression in `v` and `alpha` (ACTIVATION_WGSL in src/kernels/common.ts).

struct Params {
  n: u32,
  alpha: f32,   // leaky ReLU slope
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Out[i] = activate(X[i], p.alpha);
}
