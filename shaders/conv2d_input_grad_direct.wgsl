// 2-D convolution input gradient dx = conv_transpose(dy, w), computed directly (no workgroup
// memory) for CPU adapters; see conv2d_forward_direct.wgsl for why. As a gather:
//   dx[n, g*Cin/groups + ci, ih, iw] = sum over (co, ky, kx) of
//     dy[n, g*Cout/groups + co, oh, ow] * w[g*Cout/groups + co, ci, ky, kx],
//   where oh = (ih + pad_top - ky*dil_h) / stride_h must be integral and in [0, Ho) (same for ow).
// Layout: NCHW for dy and dx, PyTorch OIHW for w.
// Invocation: RM consecutive input pixels (of M = N*H*W) x RN consecutive input channels of one group.
// Workgroup: WG invocations; invocation i takes pixel block i % pixel_blocks and channel block
// i / pixel_blocks (tiles_n channel blocks). Grid: x,y = folded workgroup index, z = group.
// Variants: RM, RN, WG, and the strides SH, SW as constants (a division by a constant is a multiply;
// by a variable it is a scalar division per lane).

// struct Params (the problem's geometry: batch, cin, h, w, cout, ho, wo, groups, cin_g, cout_g, kh, kw,
// stride_h, stride_w, pad_t, pad_l, dil_h, dil_w, alpha, tiles_n, gemm_m, gemm_n, gemm_k, tiles,
// k_chunk, splits, total) is shared by the conv2d shaders: CONV2D_PARAMS in src/kernels/conv2d.ts.
${CONV2D_PARAMS}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Dy: array<f32>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> Dx: array<f32>;

const RM = ${RM}u;
const RN = ${RN}u;
const WG = ${WG}u;
const SH = ${SH}u;
const SW = ${SW}u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  // Consecutive invocations take consecutive blocks of RM pixels, then the next block of RN
  // channels: a small image with many channels still fills whole workgroups.
  let inv = (wid.x + wid.y * nwg.x) * WG + t;
  let pixel_blocks = (p.gemm_m + RM - 1u) / RM;
  if (inv >= pixel_blocks * p.tiles_n) { return; } // past the last block (also padding workgroups of a folded grid)
  let g = wid.z;
  let m0 = (inv % pixel_blocks) * RM;
  let c0 = (inv / pixel_blocks) * RN;
  let hw_o = p.ho * p.wo;
  let hw_i = p.h * p.w;
  let khw = p.kh * p.kw;

  // Each pixel's first dy channel of group g, and its position shifted by the padding: tap (ky, kx)
  // reads output (th - ky*dil_h, tw - kx*dil_w) / stride. Pixels past M repeat the last (not stored).
  var dy_base: array<u32, RM>;
  var th: array<i32, RM>;
  var tw: array<i32, RM>;
  for (var r = 0u; r < RM; r++) {
    let m = min(m0 + r, p.gemm_m - 1u);
    let pix = m % hw_i;
    dy_base[r] = ((m / hw_i) * p.cout + g * p.cout_g) * hw_o;
    th[r] = i32(pix / p.w) + p.pad_t;
    tw[r] = i32(pix % p.w) + p.pad_l;
  }
  // w[co, ci, ky, kx] for this invocation's channels; channels past cin_g repeat the last.
  var w_col: array<u32, RN>;
  for (var j = 0u; j < RN; j++) {
    w_col[j] = min(c0 + j, p.cin_g - 1u) * khw;
  }

  var acc: array<array<f32, RN>, RM>;
  for (var co = 0u; co < p.cout_g; co++) {
    let dy_ch = co * hw_o;
    let w_filter = (g * p.cout_g + co) * p.cin_g * khw;
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
        var dv: array<f32, RM>;
        for (var r = 0u; r < RM; r++) {
          let sh = th[r] - i32(ky) * p.dil_h;
          let sw = tw[r] - i32(kx) * p.dil_w;
          let oh = u32(sh) / SH;
          let ow = u32(sw) / SW;
          let hit = sh >= 0 && sw >= 0 && u32(sh) % SH == 0u && u32(sw) % SW == 0u && oh < p.ho && ow < p.wo;
          dv[r] = select(0.0, Dy[select(0u, dy_base[r] + dy_ch + oh * p.wo + ow, hit)], hit);
        }
        let tap = w_filter + ky * p.kw + kx;
        for (var j = 0u; j < RN; j++) {
          let wv = Wt[tap + w_col[j]];
          for (var r = 0u; r < RM; r++) { acc[r][j] = fma(dv[r], wv, acc[r][j]); }
        }
      }
    }
  }

  for (var r = 0u; r < RM; r++) {
    let m = m0 + r;
    if (m >= p.gemm_m) { break; }
    let dx_base = (m / hw_i) * p.cin * hw_i + m % hw_i;
    for (var j = 0u; j < RN; j++) {
      let c = c0 + j;
      if (c >= p.cin_g) { break; }
      Dx[dx_base + (g * p.cin_g + c) * hw_i] = acc[r][j];
    }
  }
}
