// Matrix product for few rows (M ≤ 8), such as a batch-1 linear layer and its input gradient:
//   Out = act(op(A) · op(B) + bias),  op(A) is M×K, op(B) is K×N, Out is M×N (row-major).
// A GEMM tile of 64 rows would spend 63/64 of its work on padding here; instead every thread
// walks K for all M rows at once, and the work is spread over N (and over K, then reduced).
// Layout: A is [M, K], or [K, M] with TRANS_A; B is [K, N], or [N, K] with TRANS_B.
// Workgroup: 256 threads = 4 output columns × 64 lanes with TRANS_B (lanes split K, so each
// column's B row is read contiguously); 64 output columns × 4 lanes without (threads read
// neighbouring columns of B's rows). Lanes' partial sums are reduced in workgroup memory.
// Grid: (⌈N / columns per workgroup⌉, 1, 1), folded into 2-D when large.
// Variants: TRANS_A, TRANS_B, BIAS, VEC4 (K % 4 == 0, TRANS_B, not TRANS_A) (booleans); ROWS (1, 2, 4 or 8 ≥ M); ACTIVATION, a WGSL
// expression in `v` and `alpha`.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if ${VEC4}
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
#endif
#if ${BIAS}
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
#endif

const MMAX = ${ROWS}u; // M rounded up to 1, 2, 4 or 8: the row loops unroll
#if ${TRANS_B}
const COLS = 4u;
const LANES = 64u;
#else
const COLS = 64u;
const LANES = 4u;
#endif

var<workgroup> partial: array<array<f32, 256>, MMAX>; // [m][lane·COLS + column]

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

#if ${VEC4}
#else
fn a_at(m: u32, k: u32) -> f32 {
#if ${TRANS_A}
  return A[k * p.M + m];
#else
  return A[m * p.K + k];
#endif
}

fn b_at(k: u32, n: u32) -> f32 {
#if ${TRANS_B}
  return B[n * p.K + k];
#else
  return B[k * p.N + n];
#endif
}
#endif

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
#if ${TRANS_B}
  let col = li / LANES;
  let lane = li % LANES;
#else
  let col = li % COLS;
  let lane = li / COLS;
#endif
  let n = (wg.x + wg.y * nwg.x) * COLS + col;
  var acc: array<f32, MMAX>;
  if (n < p.N) {
#if ${VEC4}
    // K % 4 == 0, A row-major and B transposed: both rows are contiguous in k, read 4 at a time.
    let k4 = p.K / 4u;
    for (var k = lane; k < k4; k += LANES) {
      let b = B4[n * k4 + k];
      for (var m = 0u; m < MMAX; m++) {
        if (m < p.M) { acc[m] += dot(A4[m * k4 + k], b); }
      }
    }
#else
    for (var k = lane; k < p.K; k += LANES) {
      let b = b_at(k, n);
      for (var m = 0u; m < MMAX; m++) {
        if (m < p.M) { acc[m] += a_at(m, k) * b; }
      }
    }
#endif
  }
  let slot = lane * COLS + col;
  for (var m = 0u; m < MMAX; m++) { partial[m][slot] = acc[m]; }
  workgroupBarrier();
  // Tree reduction over lanes (LANES is a power of two).
  for (var half = LANES / 2u; half > 0u; half /= 2u) {
    if (lane < half) {
      for (var m = 0u; m < MMAX; m++) { partial[m][slot] += partial[m][slot + half * COLS]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) {
    for (var m = 0u; m < p.M; m++) {
      var v = partial[m][col];
#if ${BIAS}
      v += Bias[n];
#endif
      Out[m * p.N + n] = activate(v, p.alpha);
    }
  }
}
