// The second half of a split-K convolution (forward or input gradient): Out[i] = act(sum over s of
// Partial[s][i] + bias[channel of i]) for every element i of the NCHW output.
// Bindings: Partial [splits, total], Bias [channels] (HAS_BIAS), Out [total].
// One element per thread, 256 threads per workgroup, the grid folded into x,y.
// Variants: ACTIVATION (WGSL expression in v and alpha), HAS_BIAS.

struct Params {
  total: u32,      // elements of the output
  splits: u32,
  plane: u32,      // H*W of the output: element i is in channel (i / plane) % channels
  channels: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Partial: array<f32>;
#if ${HAS_BIAS}
@group(0) @binding(2) var<storage, read> Bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
#endif

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  var v = 0.0;
  for (var s = 0u; s < p.splits; s++) { v += Partial[s * p.total + i]; }
#if ${HAS_BIAS}
  v += Bias[(i / p.plane) % p.channels];
#endif
  Out[i] = activate(v, p.alpha);
}
