// Global average pooling over the spatial dimensions: y[n, c] = (1 / (H·W)) Σ_hw x[n, c, h, w],
// and its gradient dx[n, c, h, w] = dy[n, c] / (H·W).
// Layout: NCHW in, [N, C] out (a "plane" is one (n, c) image of `size` = H·W values).
// Entry points (bindings: 1 = Src, 2 = Dst):
//   forward   one workgroup of ${WG} threads per plane (workgroups folded into 2-D when there are
//             more planes than one dimension holds); each thread sums a strided slice, then a tree
//             reduction in workgroup memory. H·W may be large (50k+) and the result is
//             deterministic.
//   backward  one thread per input element, 256 per workgroup, grid folded into 2-D.
// Variants: WG (64 or 256) is the forward's workgroup size, chosen from H·W; a power of two.

struct Params {
  n: u32,          // backward: number of input elements
  planes: u32,     // N·C
  size: u32,       // H·W
  inv_size: f32,   // 1 / (H·W)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Src: array<f32>;
@group(0) @binding(2) var<storage, read_write> Dst: array<f32>;

var<workgroup> partial: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let plane = wid.x + wid.y * nwg.x;
  if (plane >= p.planes) { return; }   // uniform: the whole workgroup leaves
  let base = plane * p.size;
  var s = 0.0;
  for (var j = lid; j < p.size; j += ${WG}u) {
    s += Src[base + j];
  }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = ${WG}u / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    Dst[plane] = partial[0] * p.inv_size;
  }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  Dst[i] = Src[i / p.size] * p.inv_size;
}
