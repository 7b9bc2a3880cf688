// Activation backward: gradIn = rule(g, y), elementwise, from the gradient above (g) and the
// forward pass's OUTPUT y. Using y rather than the input x is what lets fused kernels
// (conv+bias+relu, linear+relu) save only their output: for the ReLU family, x > 0 exactly
// when y > 0 (and, for ReLU6, 0 < x < 6 exactly when 0 < y < 6).
// Layout: any (contiguous); G, Y and Out have the same number of elements.
// Workgroup: 256 threads, one element each; the grid is folded into 2-D when it has > 65,535 groups.
//
// The three ReLU rules (../shared/docs/methods.md §1–3; inequalities strict, so relu'(0) = 0):
//   ordinary  g_in = g · 1[x > 0]                 the gradient (vanilla gradient, Grad-CAM, …)
//   guided    g_in = g · 1[x > 0] · 1[g > 0]      guided backprop (Springenberg et al. 2015)
//   deconv    g_in = relu(g) = max(g, 0)          DeconvNet (Zeiler & Fergus 2014): x's sign ignored
// `open` below is 1[x > 0] (ReLU) or 1[0 < x < 6] (ReLU6): where the forward pass let x through.
//
// Entry points (one pipeline each; bindings: 1 = G, 2 = Y, 3 = Out), named <activation>_<rule>:
//   relu_ordinary   relu_guided   relu_deconv
//   relu6_ordinary  relu6_guided  relu6_deconv
//   leakyrelu_ordinary   g · (y > 0 ? 1 : alpha)   (alpha ≥ 0, so y > 0 exactly when x > 0)
//   sigmoid_ordinary     g · y · (1 − y)
//   tanh_ordinary        g · (1 − y²)
// src/kernels/activation.ts (ACTIVATION_RULES) lists the same names; src/autodiff/tape.ts picks
// one per backward call (`rules: { activations: { relu: 'guided' } }`).

struct Params {
  n: u32,
  alpha: f32,   // leaky ReLU slope
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

// ---- The ReLU rules -----------------------------------------------------------------------------

// ordinary: g_in = g · 1[x > 0]
fn ordinary(g: f32, open: bool) -> f32 {
  return select(0.0, g, open);
}

// guided: g_in = g · 1[x > 0] · 1[g > 0]  (the ordinary rule and DeconvNet's together)
fn guided(g: f32, open: bool) -> f32 {
  return select(0.0, g, open && g > 0.0);
}

// deconv: g_in = relu(g) = max(g, 0); `open` (the forward sign) is deliberately ignored
fn deconv(g: f32, open: bool) -> f32 {
  return max(g, 0.0);
}

// Where the forward ReLU / ReLU6 passed its input, told from its output y.
fn relu_open(y: f32) -> bool { return y > 0.0; }
fn relu6_open(y: f32) -> bool { return y > 0.0 && y < 6.0; }

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// ---- Entry points -------------------------------------------------------------------------------

@compute @workgroup_size(256)
fn relu_ordinary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = ordinary(G[i], relu_open(Y[i])); }
}

@compute @workgroup_size(256)
fn relu_guided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = guided(G[i], relu_open(Y[i])); }
}

@compute @workgroup_size(256)
fn relu_deconv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = deconv(G[i], relu_open(Y[i])); }
}

@compute @workgroup_size(256)
fn relu6_ordinary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = ordinary(G[i], relu6_open(Y[i])); }
}

@compute @workgroup_size(256)
fn relu6_guided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = guided(G[i], relu6_open(Y[i])); }
}

@compute @workgroup_size(256)
fn relu6_deconv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = deconv(G[i], relu6_open(Y[i])); }
}

@compute @workgroup_size(256)
fn leakyrelu_ordinary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { Out[i] = G[i] * select(p.alpha, 1.0, Y[i] > 0.0); }
}

@compute @workgroup_size(256)
fn sigmoid_ordinary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { let y = Y[i]; Out[i] = G[i] * y * (1.0 - y); }
}

@compute @workgroup_size(256)
fn tanh_ordinary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < p.n) { let y = Y[i]; Out[i] = G[i] * (1.0 - y * y); }
}
