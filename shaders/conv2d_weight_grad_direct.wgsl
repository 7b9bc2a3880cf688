// 2-D convolution filter gradient, computed directly (no workgroup memory) for CPU adapters; see
// conv2d_forward_direct.wgsl for why.
//   dw[co, ci, ky, kx] = sum over n, oh, ow of
//     dy[n, g*Cout/groups + co, oh, ow] * x[n, g*Cin/groups + ci, oh*stride_h - pad_top + ky*dil_h, ow*stride_w - pad_left + kx*dil_w]
// As a GEMM per group: M = Cout/groups (filters), Ncols = (Cin/groups)*kh*kw (taps), K = N*Ho*Wo.
// K is long and the filter small, so K is split into `splits` chunks of k_chunk output pixels; each
// chunk writes its partial sums to Out[split][w index], and conv2d_weight_grad.wgsl's sum_splits adds
// them (with one split, Out is dw itself).
// Layout: NCHW for x and dy, PyTorch OIHW for dw (flat index (g*Cout/groups + co)*Ncols + tap).
// Invocation: RM consecutive filters x RN consecutive taps, walking its chunk of K one output pixel
// at a time (all lanes on the same pixel). Workgroup: WG invocations. Grid: x,y = folded linear index
// split * tiles + workgroup of the split, z = group; tiles_n = tap blocks per filter block.
// Variants: RM, RN, WG.

// struct Params (the problem's geometry: batch, cin, h, w, cout, ho, wo, groups, cin_g, cout_g, kh, kw,
// stride_h, stride_w, pad_t, pad_l, dil_h, dil_w, alpha, tiles_n, gemm_m, gemm_n, gemm_k, tiles,
// k_chunk, splits, total) is shared by the conv2d shaders: CONV2D_PARAMS in src/kernels/conv2d.ts.
${CONV2D_PARAMS}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Dy: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

const RM = ${RM}u;
const RN = ${RN}u;
const WG = ${WG}u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let lin = wid.x + wid.y * nwg.x;
  let split = lin / p.tiles;
  if (split >= p.splits) { return; } // padding workgroups of a folded grid
  let inv = (lin % p.tiles) * WG + t;
  let tiles_m = (p.cout_g + RM - 1u) / RM;
  if (inv >= tiles_m * p.tiles_n) { return; }
  let g = wid.z;
  let co0 = (inv / p.tiles_n) * RM;
  let j0 = (inv % p.tiles_n) * RN;
  let hw_o = p.ho * p.wo;
  let hw_i = p.h * p.w;
  let khw = p.kh * p.kw;
  let hi = i32(p.h);
  let wi = i32(p.w);

  // Each tap's input channel plane and its offset from the output pixel's position scaled by the
  // stride; taps past Ncols and filters past cout_g repeat the last (not stored).
  var x_ch: array<u32, RN>;
  var off_h: array<i32, RN>;
  var off_w: array<i32, RN>;
  for (var j = 0u; j < RN; j++) {
    let col = min(j0 + j, p.gemm_n - 1u);
    let tap = col % khw;
    x_ch[j] = (g * p.cin_g + col / khw) * hw_i;
    off_h[j] = i32(tap / p.kw) * p.dil_h - p.pad_t;
    off_w[j] = i32(tap % p.kw) * p.dil_w - p.pad_l;
  }
  var dy_ch: array<u32, RM>;
  for (var r = 0u; r < RM; r++) {
    dy_ch[r] = (g * p.cout_g + min(co0 + r, p.cout_g - 1u)) * hw_o;
  }

  var acc: array<array<f32, RN>, RM>;
  let k_begin = split * p.k_chunk;
  let k_end = min(p.gemm_k, k_begin + p.k_chunk);
  // The output pixel k as (n, oh, ow), advanced with carries (no divisions in the loop).
  var n = k_begin / hw_o;
  var oh = (k_begin % hw_o) / p.wo;
  var ow = k_begin % p.wo;
  for (var k = k_begin; k < k_end; k++) {
    let dy_img = n * p.cout * hw_o + oh * p.wo + ow;
    let x_img = n * p.cin * hw_i;
    let ih0 = i32(oh) * p.stride_h;
    let iw0 = i32(ow) * p.stride_w;
    var dv: array<f32, RM>;
    for (var r = 0u; r < RM; r++) { dv[r] = Dy[dy_img + dy_ch[r]]; }
    for (var j = 0u; j < RN; j++) {
      let ih = ih0 + off_h[j];
      let iw = iw0 + off_w[j];
      let inside = ih >= 0 && ih < hi && iw >= 0 && iw < wi;
      let xv = select(0.0, X[select(0u, x_img + x_ch[j] + u32(ih) * p.w + u32(iw), inside)], inside);
      for (var r = 0u; r < RM; r++) { acc[r][j] = fma(dv[r], xv, acc[r][j]); }
    }
    ow++;
    if (ow == p.wo) {
      ow = 0u;
      oh++;
      if (oh == p.ho) { oh = 0u; n++; }
    }
  }

  let out_base = split * p.total;
  for (var r = 0u; r < RM; r++) {
    let co = co0 + r;
    if (co >= p.cout_g) { break; }
    for (var j = 0u; j < RN; j++) {
      let col = j0 + j;
      if (col >= p.gemm_n) { break; }
      Out[out_base + (g * p.cout_g + co) * p.gemm_n + col] = acc[r][j];
    }
  }
}
