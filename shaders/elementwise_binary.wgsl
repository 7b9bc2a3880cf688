// Elementwise binary op out = OP(a, b) with NumPy-style broadcasting, rank ≤ 6.
// Layout: any; a and b are read through strides (0 on broadcast dimensions), out is contiguous.
// Workgroup: 256 threads, one output element each; the grid may be folded into 2-D for > 16M elements.
// Variants: OP is a WGSL expression in `a` and `b` (e.g. "a + b"); BROADCAST=false skips index decoding.

struct Params {
  shape_lo: vec4<u32>,    // output dims 0..3 of the rank-6, right-aligned shape
  shape_hi: vec4<u32>,    // output dims 4..5
  a_lo: vec4<u32>, a_hi: vec4<u32>,   // element strides of a per output dim (0 = broadcast)
  b_lo: vec4<u32>, b_hi: vec4<u32>,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

fn op(a: f32, b: f32) -> f32 { return ${OP}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
#if ${BROADCAST}
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  let shape = array<u32, 6>(p.shape_lo.x, p.shape_lo.y, p.shape_lo.z, p.shape_lo.w, p.shape_hi.x, p.shape_hi.y);
  let sa = array<u32, 6>(p.a_lo.x, p.a_lo.y, p.a_lo.z, p.a_lo.w, p.a_hi.x, p.a_hi.y);
  let sb = array<u32, 6>(p.b_lo.x, p.b_lo.y, p.b_lo.z, p.b_lo.w, p.b_hi.x, p.b_hi.y);
  for (var d = 5; d >= 0; d--) {
    let c = rest % shape[d];
    rest = rest / shape[d];
    ia += c * sa[d];
    ib += c * sb[d];
  }
  Out[i] = op(A[ia], B[ib]);
#else
  Out[i] = op(A[i], B[i]);
#endif
}
