// 2-D convolution forward, y = act(conv(x, w) + bias), as a tiled implicit GEMM per group:
//   M = N*Ho*Wo (output pixels), Ncols = Cout/groups (filters), K = (Cin/groups)*kh*kw (taps),
//   A[m][k] = x at the input position of tap k for output pixel m (0 in the padding, built on the fly),
//   B[k][c] = w[g*Cout/groups + c][k] (w is [Cout, Cin/groups, kh, kw], so each filter is a contiguous row of K).
// Layout: NCHW for x and y, PyTorch OIHW for w; bias [Cout].
// Workgroup: 256 threads = (TM/RM) x (TN/RN); each computes an RM x RN register block of a TM x TN
// output tile; K is walked in steps of TK staged through workgroup memory.
// Grid: x,y = folded linear index split * tiles + tile (tile = tile_m * tiles_n + tile_n), z = group.
// Split K (SPLIT): when there are too few tiles to fill the GPU (deep layers at batch 1), K is cut into
// `splits` chunks of k_chunk taps; each chunk writes its partial sums (before bias and activation)
// to Y[split][NCHW index], and conv2d_split_sum.wgsl adds them, the bias and the activation.
// Variants: ACTIVATION (WGSL expression in v and alpha), HAS_BIAS, SPLIT, tile shape TM/TN/TK/RM/RN.

// struct Params (the problem's geometry: batch, cin, h, w, cout, ho, wo, groups, cin_g, cout_g, kh, kw,
// stride_h, stride_w, pad_t, pad_l, dil_h, dil_w, alpha, tiles_n, gemm_m, gemm_n, gemm_k, tiles,
// k_chunk, splits, total) is shared by the conv2d shaders: CONV2D_PARAMS in src/kernels/conv2d.ts.
${CONV2D_PARAMS}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#endif

const TM = ${TM}u;
const TN = ${TN}u;
const TK = ${TK}u;
const RM = ${RM}u;
const RN = ${RN}u;
const TX = TM / RM;
const TY = TN / RN;
const THREADS = 256u;
const A_LOADS = TK * TM / THREADS; // A elements each thread stages per K step (TM divides 256)

const B_STRIDE = TN + 1u; // Bs rows padded: the staging threads write down a column, avoiding bank conflicts

var<workgroup> As: array<f32, TK * TM>;        // [kk][m]
var<workgroup> Bs: array<f32, TK * B_STRIDE>;  // [kk][c]

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let lin = wid.x + wid.y * nwg.x;
  let split = lin / p.tiles;
  if (split >= p.splits) { return; } // padding workgroups of a folded grid (uniform per workgroup)
  let tile = lin % p.tiles;
  let g = wid.z;
  let m0 = (tile / p.tiles_n) * TM;
  let n0 = (tile % p.tiles_n) * TN;
  // This workgroup's taps: [k_begin, k_end) (all of K unless split; k_chunk is a multiple of TK).
  let k_begin = split * p.k_chunk;
  let k_end = min(p.gemm_k, k_begin + p.k_chunk);
  let hw_o = p.ho * p.wo;
  let hw_i = p.h * p.w;
  let khw = p.kh * p.kw;
  let hi = i32(p.h);
  let wi = i32(p.w);

  // Staging A: this thread always stages output pixel a_m (256 % TM == 0), and its slot i holds tap
  // k = kb + a_k0 + i*(256/TM). Taps are decoded once into (ci, ky, kx) and then advanced by TK per
  // step with carries, which avoids integer divisions in the loop.
  let a_mm = t % TM;
  let a_k0 = t / TM;
  let a_m = m0 + a_mm;
  let a_ok = a_m < p.gemm_m;
  let a_n = a_m / hw_o;
  let a_pix = a_m % hw_o;
  let ih0 = i32(a_pix / p.wo) * p.stride_h - p.pad_t;
  let iw0 = i32(a_pix % p.wo) * p.stride_w - p.pad_l;
  let x_base = (a_n * p.cin + g * p.cin_g) * hw_i;
  let step_ci = TK / khw;
  let step_ky = (TK % khw) / p.kw;
  let step_kx = TK % p.kw;
  var s_ci: array<u32, A_LOADS>;
  var s_ky: array<u32, A_LOADS>;
  var s_kx: array<u32, A_LOADS>;
  for (var i = 0u; i < A_LOADS; i++) {
    let k = k_begin + a_k0 + i * (THREADS / TM);
    s_ci[i] = k / khw;
    s_ky[i] = (k % khw) / p.kw;
    s_kx[i] = k % p.kw;
  }
  let w_base = g * p.cout_g * p.gemm_k;

  let tx = t % TX;
  let ty = t / TX;
  var acc: array<array<f32, RN>, RM>;

  for (var kb = k_begin; kb < k_end; kb += TK) {
    for (var i = 0u; i < A_LOADS; i++) {
      let kk = a_k0 + i * (THREADS / TM);
      var v = 0.0;
      if (a_ok && kb + kk < k_end) {
        let ih = ih0 + i32(s_ky[i]) * p.dil_h;
        let iw = iw0 + i32(s_kx[i]) * p.dil_w;
        if (ih >= 0 && ih < hi && iw >= 0 && iw < wi) {
          v = X[x_base + s_ci[i] * hw_i + u32(ih) * p.w + u32(iw)];
        }
      }
      As[kk * TM + a_mm] = v;
      // Advance this slot's tap by TK: (ci, ky, kx) is a mixed-radix number (·, kh, kw).
      var kx = s_kx[i] + step_kx;
      var ky = s_ky[i] + step_ky;
      var ci = s_ci[i] + step_ci;
      if (kx >= p.kw) { kx -= p.kw; ky += 1u; }
      if (ky >= p.kh) { ky -= p.kh; ci += 1u; }
      s_kx[i] = kx;
      s_ky[i] = ky;
      s_ci[i] = ci;
    }
    // Staging B: consecutive threads read consecutive k of one filter (contiguous in w).
    for (var e = t; e < TK * TN; e += THREADS) {
      let kk = e % TK;
      let c = e / TK;
      let k = kb + kk;
      var v = 0.0;
      if (n0 + c < p.cout_g && k < k_end) {
        v = Wt[w_base + (n0 + c) * p.gemm_k + k];
      }
      Bs[kk * B_STRIDE + c] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, RM>;
      var b: array<f32, RN>;
      for (var i = 0u; i < RM; i++) { a[i] = As[kk * TM + tx + i * TX]; }
      for (var j = 0u; j < RN; j++) { b[j] = Bs[kk * B_STRIDE + ty + j * TY]; }
      for (var i = 0u; i < RM; i++) {
        for (var j = 0u; j < RN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  // Rows are strided by TX so that neighbouring threads write neighbouring pixels.
  for (var i = 0u; i < RM; i++) {
    let m = m0 + tx + i * TX;
    if (m >= p.gemm_m) { continue; }
    let n = m / hw_o;
    let pix = m % hw_o;
    for (var j = 0u; j < RN; j++) {
      let c = n0 + ty + j * TY;
      if (c >= p.cout_g) { continue; }
      let co = g * p.cout_g + c;
      var v = acc[i][j];
#if ${SPLIT}
      Y[split * p.total + (n * p.cout + co) * hw_o + pix] = v;
#else
#if ${HAS_BIAS}
      v += Bias[co];
#endif
      Y[(n * p.cout + co) * hw_o + pix] = activate(v, p.alpha);
#endif
    }
  }
}
