// Gradient of a pointwise function with two parameters, from its INPUT x:
//   gradIn = g · f'(x; alpha, beta)
// for the activations whose derivative the output alone does not give (HardSwish is not
// monotonic), and for Clip and HardSigmoid, whose derivatives are written in x for the same reason
// of clarity (src/kernels/piecewise.ts lists the expressions).
// Layout: any (contiguous); G, X and out have the same number of elements.
// Workgroup: 256 threads, one element each; the grid is folded into 2-D when it has > 65,535 groups.
// Variants: DERIVATIVE is a WGSL expression in `x`, `alpha` and `beta`.

struct Params {
  n: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

fn derivative(x: f32, alpha: f32, beta: f32) -> f32 { return ${DERIVATIVE}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Out[i] = G[i] * derivative(X[i], p.alpha, p.beta);
}
