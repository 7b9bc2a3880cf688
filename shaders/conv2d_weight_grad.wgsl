// 2-D convolution filter gradient dw[co, ci, ky, kx] = sum over n, oh, ow of
//   dy[n, co, oh, ow] * x[n, g*Cin/groups + ci, oh*stride_h - pad_top + ky*dil_h, ow*stride_w - pad_left + kx*dil_w],
// as a tiled GEMM per group: M = Cout/groups (filters), Ncols = (Cin/groups)*kh*kw (taps), K = N*Ho*Wo,
//   A[co][k] = dy[n, g*Cout/groups + co, pixel], B[k][j] = x at tap j of output pixel k (0 in the padding).
// K is long (every output pixel of the batch), so it may be split into `splits` chunks of k_chunk:
// each chunk writes its partial GEMM to Out[split][w index], and `sum_splits` adds the chunks.
// Layout: NCHW for x and dy, PyTorch OIHW for dw (its flat index is (g*Cout/groups + co)*Ncols + j).
// Workgroup (main): 256 threads = (TM/RM) x (TN/RN), RM x RN register block each, K step TK through
// workgroup memory. Grid: x,y = folded linear index split * tiles + tile, z = group.
// sum_splits: 256 threads, one weight element each, grid folded into 2-D.
// Variants: tile shape TM/TN/TK/RM/RN.

// struct Params (the problem's geometry: batch, cin, h, w, cout, ho, wo, groups, cin_g, cout_g, kh, kw,
// stride_h, stride_w, pad_t, pad_l, dil_h, dil_w, alpha, tiles_n, gemm_m, gemm_n, gemm_k, tiles,
// k_chunk, splits, total) is shared by the conv2d shaders: CONV2D_PARAMS in src/kernels/conv2d.ts.
${CONV2D_PARAMS}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Dy: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
// sum_splits only (WGSL allows the same binding in different entry points).
@group(0) @binding(1) var<storage, read> Partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> Dw: array<f32>;

const TM = ${TM}u;
const TN = ${TN}u;
const TK = ${TK}u;
const RM = ${RM}u;
const RN = ${RN}u;
const TX = TM / RM;
const TY = TN / RN;
const THREADS = 256u;
const ROW_STEP = THREADS / TK;
const A_LOADS = TK * TM / THREADS;
const B_LOADS = TK * TN / THREADS;

// Both tiles are staged with consecutive threads on consecutive k (down a column): rows padded by
// one word so that those writes fall in different banks.
const A_STRIDE = TM + 1u;
const B_STRIDE = TN + 1u;

var<workgroup> As: array<f32, TK * A_STRIDE>; // [kk][co]
var<workgroup> Bs: array<f32, TK * B_STRIDE>; // [kk][j]

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
  let hw_o = p.ho * p.wo;
  let hw_i = p.h * p.w;
  let khw = p.kh * p.kw;
  let hi = i32(p.h);
  let wi = i32(p.w);

  // Staging: consecutive threads take consecutive k (output pixels, contiguous in dy and nearly so in x);
  // each thread keeps the same kk and the same rows/columns for the whole K loop.
  let kk = t % TK;
  let r0 = t / TK;
  var b_ci: array<u32, B_LOADS>;
  var b_dy: array<i32, B_LOADS>;
  var b_dx: array<i32, B_LOADS>;
  var b_ok: array<bool, B_LOADS>;
  for (var j = 0u; j < B_LOADS; j++) {
    let col = n0 + r0 + j * ROW_STEP;
    b_ok[j] = col < p.gemm_n;
    b_ci[j] = g * p.cin_g + col / khw;
    let r = col % khw;
    b_dy[j] = i32(r / p.kw) * p.dil_h - p.pad_t;
    b_dx[j] = i32(r % p.kw) * p.dil_w - p.pad_l;
  }

  let tx = t % TX;
  let ty = t / TX;
  var acc: array<array<f32, RN>, RM>;

  let k_begin = split * p.k_chunk;
  let k_end = min(p.gemm_k, k_begin + p.k_chunk);
  // This thread's k = kb + kk as (n, oh, ow), advanced by TK per step with carries (no divisions).
  let k_first = k_begin + kk;
  var n = k_first / hw_o;
  var oh = (k_first % hw_o) / p.wo;
  var ow = k_first % p.wo;
  let step_n = TK / hw_o;
  let step_oh = (TK % hw_o) / p.wo;
  let step_ow = TK % p.wo;
  for (var kb = k_begin; kb < k_end; kb += TK) {
    let k_ok = kb + kk < k_end;
    let pix = oh * p.wo + ow;
    let ih0 = i32(oh) * p.stride_h;
    let iw0 = i32(ow) * p.stride_w;
    for (var i = 0u; i < A_LOADS; i++) {
      let row = r0 + i * ROW_STEP;
      var v = 0.0;
      if (k_ok && m0 + row < p.cout_g) {
        v = Dy[(n * p.cout + g * p.cout_g + m0 + row) * hw_o + pix];
      }
      As[kk * A_STRIDE + row] = v;
    }
    for (var j = 0u; j < B_LOADS; j++) {
      let col = r0 + j * ROW_STEP;
      var v = 0.0;
      let ih = ih0 + b_dy[j];
      let iw = iw0 + b_dx[j];
      if (k_ok && b_ok[j] && ih >= 0 && ih < hi && iw >= 0 && iw < wi) {
        v = X[(n * p.cin + b_ci[j]) * hw_i + u32(ih) * p.w + u32(iw)];
      }
      Bs[kk * B_STRIDE + col] = v;
    }
    ow += step_ow;
    oh += step_oh;
    n += step_n;
    if (ow >= p.wo) { ow -= p.wo; oh += 1u; }
    if (oh >= p.ho) { oh -= p.ho; n += 1u; }
    workgroupBarrier();
    for (var q = 0u; q < TK; q++) {
      var a: array<f32, RM>;
      var b: array<f32, RN>;
      for (var i = 0u; i < RM; i++) { a[i] = As[q * A_STRIDE + tx + i * TX]; }
      for (var j = 0u; j < RN; j++) { b[j] = Bs[q * B_STRIDE + ty + j * TY]; }
      for (var i = 0u; i < RM; i++) {
        for (var j = 0u; j < RN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  let out_base = split * p.total;
  for (var i = 0u; i < RM; i++) {
    let co = m0 + tx + i * TX;
    if (co >= p.cout_g) { continue; }
    for (var j = 0u; j < RN; j++) {
      let col = n0 + ty + j * TY;
      if (col >= p.gemm_n) { continue; }
      Out[out_base + (g * p.cout_g + co) * p.gemm_n + col] = acc[i][j];
    }
  }
}

@compute @workgroup_size(256)
fn sum_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.splits; k++) { s += Partial[k * p.total + i]; }
  Dw[i] = s;
}
