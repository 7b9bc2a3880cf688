// Matrix product on CPU adapters (lavapipe, SwiftShader), with B transposed, such as a linear layer
// at a small batch (x [M, in] · wᵀ, w [out, in]):
//   Out = act(A · Bᵀ + bias),  A is [M, K], B is [N, K], both row-major with K % 4 == 0.
// Each invocation computes one output column for all rows, walking its row of B (and A) as vec4s
// with no workgroup memory and no barriers: on a CPU adapter every barrier of the GPU kernel's
// lane reduction (matvec.wgsl) is a synchronisation of emulated lanes, and a row read by one
// invocation is contiguous, which is what a CPU cache wants.
// Workgroup: 64 invocations, one column each, for one block of ROWS rows. Grid: (⌈N / 64⌉, 1,
// ⌈M / ROWS⌉), the columns folded into 2-D when large.
// Variants: BIAS (boolean); ROWS (1, 2, 4 or 8: min(M, 8) rounded up); ACTIVATION, a WGSL
// expression in `v` and `alpha`.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
#if ${BIAS}
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
#endif


fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

const ROWS = ${ROWS}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * 64u;
  if (n >= p.N) { return; }
  let k4 = p.K / 4u;
  let m0 = wid.z * ROWS; // this invocation's block of rows
  // One accumulator per row, written out by #unroll (an array indexed by m would live in memory
  // where the compiler does not unroll). Rows past M read row M-1 (in bounds, not stored).
#unroll m ${ROWS}
  var acc_#{m} = vec4<f32>();
  let a_#{m} = min(m0 + #{m}u, p.M - 1u) * k4;
#endunroll
  for (var k = 0u; k < k4; k++) {
    let b = B4[n * k4 + k];
#unroll m ${ROWS}
    acc_#{m} += A4[a_#{m} + k] * b;
#endunroll
  }
#unroll m ${ROWS}
  if (m0 + #{m}u < p.M) {
    var v = dot(acc_#{m}, vec4<f32>(1.0));
#if ${BIAS}
    v += Bias[n];
#endif
    Out[(m0 + #{m}u) * p.N + n] = activate(v, p.alpha);
  }
#endunroll
}
