// Activation backward: gradIn = rule(g, y), elementwise, from the gradient above (g) and the
// forward pass's OUTPUT y. Using y rather than the input x is what lets fused kernels
// (conv+bias+relu, linear+relu) save only their output.
// Layout: any (contiguous); G, Y and out have the same number of elements.
// Workgroup: 256 threads, one element each; the grid is folded into 2-D when it has > 65,535 groups.
// Variants: RULE is a WGSL expression in `g`, `y` and `alpha` (ACTIVATION_BACKWARD_WGSL in
// src/kernels/activation.ts), e.g. ReLU ordinary "select(0.0, g, y > 0.0)", guided
// "select(0.0, g, y > 0.0 && g > 0.0)", deconv "max(g, 0.0)".

struct Params {
  n: u32,
  alpha: f32,   // leaky ReLU slope
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

fn rule(g: f32, y: f32, alpha: f32) -> f32 { return ${RULE}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Out[i] = rule(G[i], Y[i], p.alpha);
}
