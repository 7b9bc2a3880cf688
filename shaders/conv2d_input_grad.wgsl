// 2-D convolution input gradient dx = conv_transpose(dy, w) (the same filters, transposed), as a
// tiled implicit GEMM per group written as a gather:
//   M = N*H*W (input pixels), Ncols = Cin/groups, K = (Cout/groups)*kh*kw,
//   A[m][k] = dy[n, g*Cout/groups + co, oh, ow] for tap k = (co, ky, kx), where
//             oh = (ih + pad_top - ky*dil_h) / stride_h must be integral and in [0, Ho) (same for ow),
//             and 0 otherwise,
//   B[k][ci] = w[g*Cout/groups + co, ci, ky, kx].
// Layout: NCHW for dy and dx, PyTorch OIHW for w.
// Workgroup: 256 threads = (TM/RM) x (TN/RN); each computes an RM x RN register block of a TM x TN
// tile; K is walked in steps of TK staged through workgroup memory.
// Grid: x,y = folded linear index split * tiles + tile (tile = tile_m * tiles_n + tile_n), z = group.
// Split K (SPLIT): K cut into `splits` chunks of k_chunk taps, each writing its partial sums to
// Dx[split][NCHW index]; conv2d_split_sum.wgsl adds them (see conv2d_forward.wgsl).
// Variants: SPLIT, tile shape TM/TN/TK/RM/RN.

// struct Params (the problem's geometry: batch, cin, h, w, cout, ho, wo, groups, cin_g, cout_g, kh, kw,
// stride_h, stride_w, pad_t, pad_l, dil_h, dil_w, alpha, tiles_n, gemm_m, gemm_n, gemm_k, tiles,
// k_chunk, splits, total) is shared by the conv2d shaders: CONV2D_PARAMS in src/kernels/conv2d.ts.
${CONV2D_PARAMS}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Dy: array<f32>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> Dx: array<f32>;

const TM = ${TM}u;
const TN = ${TN}u;
const TK = ${TK}u;
const RM = ${RM}u;
const RN = ${RN}u;
const TX = TM / RM;
const TY = TN / RN;
const THREADS = 256u;
const A_LOADS = TK * TM / THREADS;

const B_STRIDE = TN + 1u; // Bs rows padded: the staging threads write down a column, avoiding bank conflicts

var<workgroup> As: array<f32, TK * TM>;        // [kk][m]
var<workgroup> Bs: array<f32, TK * B_STRIDE>;  // [kk][ci]

// The output coordinate whose tap lands on this input coordinate: o with o*stride == s, or -1.
fn output_coord(s: i32, stride: i32, size: i32) -> i32 {
  if (s < 0) { return -1; }
  var o = s;
  if (stride != 1) { // uniform branch: skips the division for stride-1 layers
    o = s / stride;
    if (o * stride != s) { return -1; }
  }
  return select(-1, o, o < size);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let lin = wid.x + wid.y * nwg.x;
  let split = lin / p.tiles;
  if (split >= p.splits) { return; }
  let tile = lin % p.tiles;
  let g = wid.z;
  let m0 = (tile / p.tiles_n) * TM;
  let n0 = (tile % p.tiles_n) * TN;
  let k_begin = split * p.k_chunk; // a multiple of TK
  let k_end = min(p.gemm_k, k_begin + p.k_chunk);
  let hw_o = p.ho * p.wo;
  let hw_i = p.h * p.w;
  let khw = p.kh * p.kw;
  let ho = i32(p.ho);
  let wo = i32(p.wo);
  let step_co = TK / khw;
  let step_ky = (TK % khw) / p.kw;
  let step_kx = TK % p.kw;
  let step_r = TK % khw;

  // Staging A: this thread always stages input pixel a_m; slot i holds tap k = kb + a_k0 + i*(256/TM),
  // decoded once into (co, ky, kx) and advanced by TK per step with carries.
  let a_mm = t % TM;
  let a_k0 = t / TM;
  let a_m = m0 + a_mm;
  let a_ok = a_m < p.gemm_m;
  let a_n = a_m / hw_i;
  let a_pix = a_m % hw_i;
  let ihp = i32(a_pix / p.w) + p.pad_t;
  let iwp = i32(a_pix % p.w) + p.pad_l;
  let dy_base = (a_n * p.cout + g * p.cout_g) * hw_o;
  var s_co: array<u32, A_LOADS>;
  var s_ky: array<u32, A_LOADS>;
  var s_kx: array<u32, A_LOADS>;
  for (var i = 0u; i < A_LOADS; i++) {
    let k = k_begin + a_k0 + i * (THREADS / TM);
    s_co[i] = k / khw;
    s_ky[i] = (k % khw) / p.kw;
    s_kx[i] = k % p.kw;
  }
  // Staging B: this thread always stages k = kb + (t % TK), kept as (co, r = ky*kw + kx).
  let b_kk = t % TK;
  var b_co = (k_begin + b_kk) / khw;
  var b_r = (k_begin + b_kk) % khw;
  let w_base = g * p.cout_g * p.cin_g * khw;

  let tx = t % TX;
  let ty = t / TX;
  var acc: array<array<f32, RN>, RM>;

  for (var kb = k_begin; kb < k_end; kb += TK) {
    for (var i = 0u; i < A_LOADS; i++) {
      let kk = a_k0 + i * (THREADS / TM);
      var v = 0.0;
      if (a_ok && kb + kk < k_end) {
        let oh = output_coord(ihp - i32(s_ky[i]) * p.dil_h, p.stride_h, ho);
        let ow = output_coord(iwp - i32(s_kx[i]) * p.dil_w, p.stride_w, wo);
        if (oh >= 0 && ow >= 0) {
          v = Dy[dy_base + s_co[i] * hw_o + u32(oh) * p.wo + u32(ow)];
        }
      }
      As[kk * TM + a_mm] = v;
      var kx = s_kx[i] + step_kx;
      var ky = s_ky[i] + step_ky;
      var co = s_co[i] + step_co;
      if (kx >= p.kw) { kx -= p.kw; ky += 1u; }
      if (ky >= p.kh) { ky -= p.kh; co += 1u; }
      s_kx[i] = kx;
      s_ky[i] = ky;
      s_co[i] = co;
    }
    for (var e = t; e < TK * TN; e += THREADS) {
      let c = e / TK;
      var v = 0.0;
      if (n0 + c < p.cin_g && kb + b_kk < k_end) {
        v = Wt[w_base + (b_co * p.cin_g + n0 + c) * khw + b_r];
      }
      Bs[b_kk * B_STRIDE + c] = v;
    }
    b_r += step_r;
    b_co += step_co;
    if (b_r >= khw) { b_r -= khw; b_co += 1u; }
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

  for (var i = 0u; i < RM; i++) {
    let m = m0 + tx + i * TX;
    if (m >= p.gemm_m) { continue; }
    let n = m / hw_i;
    let pix = m % hw_i;
    for (var j = 0u; j < RN; j++) {
      let c = n0 + ty + j * TY;
      if (c >= p.cin_g) { continue; }
#if ${SPLIT}
      Dx[split * p.total + (n * p.cin + g * p.cin_g + c) * hw_i + pix] = acc[i][j];
#else
      Dx[(n * p.cin + g * p.cin_g + c) * hw_i + pix] = acc[i][j];
#endif
    }
  }
}
