// Matrix product for one or two rows with B not transposed and N % 4 == 0, such as the input
// gradient of a batch-1 linear layer (dy [1, out] · w [out, in]):
//   Out = act(op(A) · B + bias),  op(A) is M×K (M ≤ 2), B is [K, N] row-major, Out is M×N.
// Each thread owns four neighbouring columns and reads them as one vec4 per row of B (16 bytes a
// load, coalesced across the workgroup's 64 columns); 16 lanes split K and are reduced in
// workgroup memory. The plain matvec kernel reads B one float at a time here.
// Layout: A is [M, K], or [K, M] with TRANS_A.
// Workgroup: 256 threads = 16 column quads × 16 lanes. Grid: (⌈N / 64⌉, 1, 1), folded into 2-D.
// Variants: TRANS_A, BIAS (booleans); ROWS (1 or 2 ≥ M); ACTIVATION, a WGSL expression in `v` and `alpha`.

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

const MMAX = ${ROWS}u;
const QUADS = 16u;
const LANES = 16u;

var<workgroup> partial: array<array<vec4<f32>, 256>, MMAX>; // [m][lane·QUADS + quad]

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

fn a_at(m: u32, k: u32) -> f32 {
#if ${TRANS_A}
  return A[k * p.M + m];
#else
  return A[m * p.K + k];
#endif
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let quad = li % QUADS;
  let lane = li / QUADS;
  let n4 = (wg.x + wg.y * nwg.x) * QUADS + quad; // columns 4·n4 … 4·n4 + 3
  let quads = p.N / 4u;
  // One accumulator per row, written out by #unroll (an array indexed by m would live in memory
  // where the compiler does not unroll). Rows past M read row M-1 (in bounds, not stored).
#unroll m ${ROWS}
  var acc_#{m} = vec4<f32>();
#endunroll
  if (n4 < quads) {
    for (var k = lane; k < p.K; k += LANES) {
      let b = B4[k * quads + n4];
#unroll m ${ROWS}
      acc_#{m} += a_at(min(#{m}u, p.M - 1u), k) * b;
#endunroll
    }
  }
  let slot = lane * QUADS + quad;
#unroll m ${ROWS}
  partial[#{m}][slot] = acc_#{m};
#endunroll
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half /= 2u) {
    if (lane < half) {
#unroll m ${ROWS}
      partial[#{m}][slot] += partial[#{m}][slot + half * QUADS];
#endunroll
    }
    workgroupBarrier();
  }
  if (lane == 0u && n4 < quads) {
    for (var m = 0u; m < p.M; m++) {
      let s = partial[m][quad];
      for (var c = 0u; c < 4u; c++) {
        let n = 4u * n4 + c;
        var v = s[c];
#if ${BIAS}
        v += Bias[n];
#endif
        Out[m * p.N + n] = activate(v, p.alpha);
      }
    }
  }
}
