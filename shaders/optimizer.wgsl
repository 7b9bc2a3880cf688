// Optimizer updates, applied in place to one parameter tensor per dispatch (PyTorch semantics).
// Layout: any (contiguous); the parameter, its gradient and its state buffers have the same size.
// Workgroup: 256 threads, one element each, grid folded into 2-D when large.
// Entry points:
//   sgd:  g = grad + l2·p;  v = momentum·v + g;  p -= lr · (nesterov ? g + momentum·v : v)
//         Variant MOMENTUM=false skips the velocity buffer: p -= lr · g.
//   adam: p *= decay (decoupled weight decay, AdamW; 1 otherwise);  g = grad + l2·p_old;
//         m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p -= step_size · m / (√v / bc2_sqrt + eps)
//         with the bias corrections folded in on the CPU: step_size = lr / (1 − β1^t),
//         bc2_sqrt = √(1 − β2^t).
// Bindings: 1 parameter (read-write), 2 gradient, 3 velocity or m, 4 v (adam only).

struct Params {
  n: u32,
  lr: f32,
  momentum: f32,
  l2: f32,
  nesterov: u32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  step_size: f32,
  bc2_sqrt: f32,
  decay: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> Param: array<f32>;
@group(0) @binding(2) var<storage, read> Grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> State1: array<f32>;
@group(0) @binding(4) var<storage, read_write> State2: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let w = Param[i];
  var g = Grad[i] + p.l2 * w;
#if ${MOMENTUM}
  let v = p.momentum * State1[i] + g;
  State1[i] = v;
  g = select(v, g + p.momentum * v, p.nesterov != 0u);
#endif
  Param[i] = w - p.lr * g;
}

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let w = Param[i];
  let g = Grad[i] + p.l2 * w;
  let m = p.beta1 * State1[i] + (1.0 - p.beta1) * g;
  let v = p.beta2 * State2[i] + (1.0 - p.beta2) * g * g;
  State1[i] = m;
  State2[i] = v;
  Param[i] = w * p.decay - p.step_size * m / (sqrt(v) / p.bc2_sqrt + p.eps);
}
