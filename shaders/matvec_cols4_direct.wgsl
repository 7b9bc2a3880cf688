// Matrix product with B not transposed and N % 4 == 0, on CPU adapters (lavapipe, SwiftShader),
// such as the input gradient of a linear layer at a small batch (dy [M, out] · w [out, in]):
//   Out = act(op(A) · B + bias),  op(A) is M×K, B is [K, N] row-major, Out is M×N.
// Each invocation owns four neighbouring columns for a block of rows and walks all of K, reading them as
// one vec4 per row of B. There is no lane reduction (matvec_cols4.wgsl): on a CPU adapter a
// barrier is a synchronisation of emulated lanes (SwiftShader runs the workgroup as coroutines).
// Layout: A is [M, K], or [K, M] with TRANS_A.
// Workgroup: 64 invocations, one column quad each, for one block of ROWS rows. Grid: (⌈N / 256⌉,
// 1, ⌈M / ROWS⌉), the columns folded into 2-D.
// Variants: TRANS_A, BIAS (booleans); ROWS (1, 2, 4 or 8: min(M, 8) rounded up); ACTIVATION, a
// WGSL expression in `v` and `alpha`. The rows are written out by #unroll (see unroll in src/runtime/gpu.ts).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
#if ${BIAS}
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
#endif

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

fn a_at(m: u32, k: u32) -> f32 {
#if ${TRANS_A}
  return A[k * p.M + m];
#else
  return A[m * p.K + k];
#endif
}

const ROWS = ${ROWS}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>) {
  let n4 = gid.x + gid.y * nwg.x * 64u; // columns 4·n4 … 4·n4 + 3
  let quads = p.N / 4u;
  if (n4 >= quads) { return; }
  let m0 = wid.z * ROWS; // this invocation's block of rows
  // One accumulator per row; rows past M read row M-1 (in bounds, not stored).
#unroll m ${ROWS}
  var acc_#{m} = vec4<f32>();
  let row_#{m} = min(m0 + #{m}u, p.M - 1u);
#endunroll
  for (var k = 0u; k < p.K; k++) {
    let b = B4[k * quads + n4];
#unroll m ${ROWS}
    acc_#{m} += a_at(row_#{m}, k) * b;
#endunroll
  }
#unroll m ${ROWS}
  if (m0 + #{m}u < p.M) {
    for (var c = 0u; c < 4u; c++) {
      let n = 4u * n4 + c;
      var v = acc_#{m}[c];
#if ${BIAS}
      v += Bias[n];
#endif
      Out[(m0 + #{m}u) * p.N + n] = activate(v, p.alpha);
    }
  }
#endunroll
}
