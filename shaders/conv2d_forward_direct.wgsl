// 2-D convolution forward, y = act(conv(x, w) + bias), computed directly (no workgroup memory), for
// CPU adapters such as lavapipe and SwiftShader. There every load is emulated lane by lane, while
// an FMA is one vector instruction for all lanes, so what counts is FMAs per loaded value: each
// invocation keeps an RM x RN register block (RM output pixels x RN filters) and, per filter tap,
// loads RM inputs and RN weights for RM*RN FMAs. The tiled kernel (conv2d_forward.wgsl) stages
// through workgroup memory with barriers, which suits GPUs and costs 5x more on a CPU.
// Layout: NCHW for x and y, PyTorch OIHW for w; bias [Cout].
// Invocation: RM consecutive output pixels m (of M = N*Ho*Wo) x RN consecutive filters of one group.
// Workgroup: WG invocations; invocation i takes pixel block i % pixel_blocks and filter block
// i / pixel_blocks (tiles_n filter blocks). Grid: x,y = folded workgroup index, z = group.
// Variants: ACTIVATION (WGSL expression in v and alpha), HAS_BIAS, RM, RN, WG. The register block
// is written out by #unroll (see unroll in src/runtime/gpu.ts).

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

const RM = ${RM}u;
const RN = ${RN}u;
const WG = ${WG}u;

fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }

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
  let hi = i32(p.h);
  let wi = i32(p.w);

  // Where each of this invocation's pixels reads: its image's first input channel of group g, and
  // the top-left corner of its receptive field. Pixels past M repeat the last one (not stored).
#unroll r ${RM}
  let m_#{r} = min(m0 + #{r}u, p.gemm_m - 1u);
  let x_base_#{r} = ((m_#{r} / hw_o) * p.cin + g * p.cin_g) * hw_i;
  let ih0_#{r} = i32((m_#{r} % hw_o) / p.wo) * p.stride_h - p.pad_t;
  let iw0_#{r} = i32((m_#{r} % hw_o) % p.wo) * p.stride_w - p.pad_l;
#endunroll
  // Each filter is a contiguous row of K = cin_g*kh*kw weights; filters past cout_g repeat the last.
#unroll j ${RN}
  let w_row_#{j} = (g * p.cout_g + min(c0 + #{j}u, p.cout_g - 1u)) * p.gemm_k;
#endunroll

  // The RM x RN register block, one variable per element (#unroll writes the loops out).
#unroll r ${RM}
#unroll j ${RN}
  var acc_#{r}_#{j} = 0.0;
#endunroll
#endunroll
  var k = 0u;
  for (var ci = 0u; ci < p.cin_g; ci++) {
    let x_ch = ci * hw_i;
    for (var ky = 0u; ky < p.kh; ky++) {
      let dy = i32(ky) * p.dil_h;
      for (var kx = 0u; kx < p.kw; kx++) {
        let dx = i32(kx) * p.dil_w;
#unroll r ${RM}
        let ih_#{r} = ih0_#{r} + dy;
        let iw_#{r} = iw0_#{r} + dx;
        let in_#{r} = ih_#{r} >= 0 && ih_#{r} < hi && iw_#{r} >= 0 && iw_#{r} < wi;
        let x_#{r} = select(0.0, X[select(0u, x_base_#{r} + x_ch + u32(ih_#{r}) * p.w + u32(iw_#{r}), in_#{r})], in_#{r});
#endunroll
#unroll j ${RN}
        let w_#{j} = Wt[w_row_#{j} + k];
#unroll r ${RM}
        acc_#{r}_#{j} = fma(x_#{r}, w_#{j}, acc_#{r}_#{j});
#endunroll
#endunroll
        k++;
      }
    }
  }

#unroll r ${RM}
  if (m0 + #{r}u < p.gemm_m) {
    let y_base_#{r} = (m_#{r} / hw_o) * p.cout * hw_o + m_#{r} % hw_o;
#unroll j ${RN}
    if (c0 + #{j}u < p.cout_g) {
      let co = g * p.cout_g + c0 + #{j}u;
      var v = acc_#{r}_#{j};
#if ${HAS_BIAS}
      v += Bias[co];
#endif
      Y[y_base_#{r} + co * hw_o] = activate(v, p.alpha);
    }
#endunroll
  }
#endunroll
}
