// Strided copy, the one kernel behind slice, transpose, concat, broadcastTo and slice's backward:
//   Out[out_offset + Σ_d idx_d·out_stride_d] = In[in_offset + Σ_d idx_d·in_stride_d]
// for every multi-index idx of `shape` (rank ≤ 6, right-aligned: unused leading dims are 1).
// Layout: any; strides are in elements (0 repeats a value, as broadcasting does). Values are copied
// as raw 32-bit words, so float32 and int32 tensors both work.
// Workgroup: 256 threads, one element each, grid folded into 2-D when large.

struct Params {
  shape_lo: vec4<u32>,   // dims 0..3 of the rank-6 shape
  shape_hi: vec4<u32>,   // dims 4..5
  in_lo: vec4<u32>, in_hi: vec4<u32>,     // In strides per dim
  out_lo: vec4<u32>, out_hi: vec4<u32>,   // Out strides per dim
  in_offset: u32,
  out_offset: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> In: array<u32>;
@group(0) @binding(2) var<storage, read_write> Out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let shape = array<u32, 6>(p.shape_lo.x, p.shape_lo.y, p.shape_lo.z, p.shape_lo.w, p.shape_hi.x, p.shape_hi.y);
  let si = array<u32, 6>(p.in_lo.x, p.in_lo.y, p.in_lo.z, p.in_lo.w, p.in_hi.x, p.in_hi.y);
  let so = array<u32, 6>(p.out_lo.x, p.out_lo.y, p.out_lo.z, p.out_lo.w, p.out_hi.x, p.out_hi.y);
  var rest = i;
  var src = p.in_offset;
  var dst = p.out_offset;
  for (var d = 5; d >= 0; d--) {
    if (rest == 0u) { break; }
    let c = rest % shape[d];
    rest = rest / shape[d];
    src += c * si[d];
    dst += c * so[d];
  }
  Out[dst] = In[src];
}
