// Batch normalisation with frozen statistics (ONNX BatchNormalization in inference mode), per channel c:
//   y = (x − mean[c]) · scale[c] / sqrt(var[c] + ε) + bias[c]
// and its gradients.
// Layout: x, y, dy, dx are [N, C, spatial…] contiguous: element i is in channel (i / inner) % C,
// inner = the product of the spatial dimensions (1 for [N, C]). Scale, Bias, Mean, Var are [C].
// Entry points (bindings: 1 = Src, 2 = Scale, 3 = Var, 4 = Dst, 5 = Mean, 6 = Aux):
//   forward      Src = x, Aux = bias → Dst = y. Thread per element (256 per workgroup, grid folded
//                into 2-D: flat index = gid.x + gid.y · num_workgroups.x · 256).
//   input_grad   Src = dy → Dst = dx = dy · scale[c] / sqrt(var[c] + ε). Thread per element.
//   param_grads  Src = dy, Aux = x → Dst [4, C] = dscale, dbias, dmean, dvar per channel. One workgroup
//                of 256 threads per channel (grid folded into 2-D), each summing a strided part of
//                S1 = Σ dy and S2 = Σ dy·(x − mean[c]) over N and the spatial positions, then a tree
//                reduction: with r = 1/sqrt(var + ε), dscale = S2·r, dbias = S1, dmean = −scale·r·S1,
//                dvar = −scale·S2·r³/2.

struct Params {
  n: u32,          // elements of x
  channels: u32,   // C
  inner: u32,      // spatial positions per (n, c)
  batch: u32,      // N
  epsilon: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Src: array<f32>;
@group(0) @binding(2) var<storage, read> Scale: array<f32>;
@group(0) @binding(3) var<storage, read> Var: array<f32>;
@group(0) @binding(4) var<storage, read_write> Dst: array<f32>;
@group(0) @binding(5) var<storage, read> Mean: array<f32>;
@group(0) @binding(6) var<storage, read> Aux: array<f32>;

fn channel_of(i: u32) -> u32 {
  return (i / p.inner) % p.channels;
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let c = channel_of(i);
  Dst[i] = (Src[i] - Mean[c]) * (Scale[c] * inverseSqrt(Var[c] + p.epsilon)) + Aux[c];
}

@compute @workgroup_size(256)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let c = channel_of(i);
  Dst[i] = Src[i] * (Scale[c] * inverseSqrt(Var[c] + p.epsilon));
}

var<workgroup> s1: array<f32, 256>;
var<workgroup> s2: array<f32, 256>;

@compute @workgroup_size(256)
fn param_grads(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= p.channels) { return; }   // uniform: the whole workgroup leaves
  let m = Mean[c];
  var a = 0.0;
  var b = 0.0;
  let per = p.batch * p.inner;
  for (var k = t; k < per; k += 256u) {
    let i = ((k / p.inner) * p.channels + c) * p.inner + k % p.inner;
    let g = Src[i];
    a += g;
    b += g * (Aux[i] - m);
  }
  s1[t] = a;
  s2[t] = b;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half >>= 1u) {
    if (t < half) {
      s1[t] += s1[t + half];
      s2[t] += s2[t + half];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let r = inverseSqrt(Var[c] + p.epsilon);
    Dst[c] = s2[0] * r;
    Dst[p.channels + c] = s1[0];
    Dst[2u * p.channels + c] = -Scale[c] * r * s1[0];
    Dst[3u * p.channels + c] = -0.5 * Scale[c] * s2[0] * r * r * r;
  }
}
