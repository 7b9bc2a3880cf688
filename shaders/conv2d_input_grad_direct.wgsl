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
// by a variable it is a scalar division per lane); STRIDED false (both strides 1) leaves out the
// divisions, which a compiler that does not fold x / 1 (SwiftShader's Subzero) would still do
// lane by lane. The register block is written out by #unroll.

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
#unroll r ${RM}
  let m_#{r} = min(m0 + #{r}u, p.gemm_m - 1u);
  let dy_base_#{r} = ((m_#{r} / hw_i) * p.cout + g * p.cout_g) * hw_o;
  let th_#{r} = i32((m_#{r} % hw_i) / p.w) + p.pad_t;
  let tw_#{r} = i32((m_#{r} % hw_i) % p.w) + p.pad_l;
#endunroll
  // w[co, ci, ky, kx] for this invocation's channels; channels past cin_g repeat the last.
#unroll j ${RN}
  let w_col_#{j} = min(c0 + #{j}u, p.cin_g - 1u) * khw;
#endunroll

  // The RM x RN register block, one variable per element (#unroll writes the loops out).
#unroll r ${RM}
#unroll j ${RN}
  var acc_#{r}_#{j} = 0.0;
#endunroll
#endunroll
  for (var co = 0u; co < p.cout_g; co++) {
    let dy_ch = co * hw_o;
    let w_filter = (g * p.cout_g + co) * p.cin_g * khw;
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
#unroll r ${RM}
        let sh_#{r} = th_#{r} - i32(ky) * p.dil_h;
        let sw_#{r} = tw_#{r} - i32(kx) * p.dil_w;
#if ${STRIDED}
        let oh_#{r} = u32(sh_#{r}) / SH;
        let ow_#{r} = u32(sw_#{r}) / SW;
        let hit_#{r} = sh_#{r} >= 0 && sw_#{r} >= 0 && u32(sh_#{r}) % SH == 0u && u32(sw_#{r}) % SW == 0u && oh_#{r} < p.ho && ow_#{r} < p.wo;
#else
        let oh_#{r} = u32(sh_#{r});
        let ow_#{r} = u32(sw_#{r});
        let hit_#{r} = sh_#{r} >= 0 && sw_#{r} >= 0 && oh_#{r} < p.ho && ow_#{r} < p.wo;
#endif
        let d_#{r} = select(0.0, Dy[select(0u, dy_base_#{r} + dy_ch + oh_#{r} * p.wo + ow_#{r}, hit_#{r})], hit_#{r});
#endunroll
        let tap = w_filter + ky * p.kw + kx;
#unroll j ${RN}
        let w_#{j} = Wt[tap + w_col_#{j}];
#unroll r ${RM}
        acc_#{r}_#{j} = fma(d_#{r}, w_#{j}, acc_#{r}_#{j});
#endunroll
#endunroll
      }
    }
  }

#unroll r ${RM}
  if (m0 + #{r}u < p.gemm_m) {
    let dx_base_#{r} = (m_#{r} / hw_i) * p.cin * hw_i + m_#{r} % hw_i;
#unroll j ${RN}
    if (c0 + #{j}u < p.cin_g) {
      Dx[dx_base_#{r} + (g * p.cin_g + c0 + #{j}u) * hw_i] = acc_#{r}_#{j};
    }
#endunroll
  }
#endunroll
}
