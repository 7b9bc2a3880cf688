// Batched matrix product with fused bias and activation:
//   Out[b] = act(op(A[b]) · op(B[b]) + bias),   op(A) is M×K, op(B) is K×N, Out[b] is M×N.
// Layout: row-major. A is [M, K], or [K, M] when TRANS_A; B is [K, N], or [N, K] when TRANS_B
// (so x·wᵀ with PyTorch's [out, in] weights needs no copy). Batch b advances A and B by
// strideA and strideB elements (0 broadcasts one matrix over the batch) and Out by M·N.
// bias has N values, added to every row (one per output column).
// Workgroup: 16×16 threads computing a 64×64 tile of Out, each thread a 4×4 block (rows
// ty + 16·i, columns tx + 16·j, so that neighbouring threads write neighbouring columns).
// K is walked in steps of 16: each step stages a 64×16 slice of op(A) and a 16×64 slice of op(B)
// in workgroup memory; out-of-range elements are staged as zeros, so any M, N, K works.
// Grid: (⌈N/64⌉, ⌈M/64⌉, batch).
// Variants: TRANS_A, TRANS_B, BIAS (booleans); ACTIVATION, a WGSL expression in `v` and `alpha`.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32,
  strideB: u32,
  alpha: f32,   // leaky ReLU slope
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
#if ${BIAS}
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
#endif

const TILE = 64u;
const TK = 16u;

// Staged slices, k-major: As[k][m] = op(A)[row0 + m][k0 + k], Bs[k][n] = op(B)[k0 + k][col0 + n].
var<workgroup> As: array<array<f32, 64>, 16>;
var<workgroup> Bs: array<array<f32, 64>, 16>;

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let t = ty * 16u + tx;
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  let aBase = wid.z * p.strideA;
  let bBase = wid.z * p.strideB;

  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; }
  }

  let steps = (p.K + TK - 1u) / TK;
  for (var s = 0u; s < steps; s++) {
    let k0 = s * TK;
    // 256 threads stage 64×16 values of each operand, 4 each, reading memory along its rows.
    for (var l = 0u; l < 4u; l++) {
      let e = t + l * 256u;
#if ${TRANS_A}
      let ak = e / TILE;      // A is [K, M]: consecutive threads read consecutive m
      let am = e % TILE;
      let ga = row0 + am;
      let gk = k0 + ak;
      As[ak][am] = select(0.0, A[aBase + gk * p.M + ga], ga < p.M && gk < p.K);
#else
      let am = e / TK;        // A is [M, K]: consecutive threads read consecutive k
      let ak = e % TK;
      let ga = row0 + am;
      let gk = k0 + ak;
      As[ak][am] = select(0.0, A[aBase + ga * p.K + gk], ga < p.M && gk < p.K);
#endif
#if ${TRANS_B}
      let bn = e / TK;        // B is [N, K]: consecutive threads read consecutive k
      let bk = e % TK;
      let gn = col0 + bn;
      let hk = k0 + bk;
      Bs[bk][bn] = select(0.0, B[bBase + gn * p.K + hk], gn < p.N && hk < p.K);
#else
      let bk = e / TILE;      // B is [K, N]: consecutive threads read consecutive n
      let bn = e % TILE;
      let gn = col0 + bn;
      let hk = k0 + bk;
      Bs[bk][bn] = select(0.0, B[bBase + hk * p.N + gn], gn < p.N && hk < p.K);
#endif
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[k][ty + 16u * i]; }
      for (var j = 0u; j < 4u; j++) { b[j] = Bs[k][tx + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  let outBase = wid.z * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + ty + 16u * i;
    if (r >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + tx + 16u * j;
      if (c >= p.N) { continue; }
#if ${BIAS}
      let v = acc[i][j] + Bias[c];
#else
      let v = acc[i][j];
#endif
      Out[outBase + r * p.N + c] = activate(v, p.alpha);
    }
  }
}
