// Perturbed copies of images, for the faithfulness metrics (deletion, insertion, Average Drop's
// masks aside): each output image takes, pixel by pixel, the value of one of two sources, chosen by
// the pixel's place in the image's ranking.
//
//   Out[b, c, p] = Inside[i, c, p]   if lo_b ≤ Rank[i, p] < hi_b,
//                  Outside[i, c, p]  otherwise,          with i = img_b,
//
// for item b = Items[4b .. 4b+3] = (img_b, lo_b, hi_b, key_b), the key unused here. Rank[i, p] is
// pixel p's position in image i's ranking (0 = most salient). All C channels of a pixel change together. Deletion takes the
// baseline inside and x outside; insertion the reverse. Inside and Outside hold one image per
// source image [N, C, H, W], or one image shared by all [1, C, H, W] (the *_PER_IMAGE flags).
// Layout NCHW, p = row-major pixel index. Workgroup: 256 threads, one output value each, grid
// folded into 2-D when large.

struct Params {
  n: u32,                  // B·C·H·W values to write
  c: u32,
  hw: u32,
  inside_per_image: u32,   // 1: Inside is [N, C, H, W]; 0: [1, C, H, W]
  outside_per_image: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Items: array<i32>;
@group(0) @binding(2) var<storage, read> Rank: array<i32>;
@group(0) @binding(3) var<storage, read> Inside: array<f32>;
@group(0) @binding(4) var<storage, read> Outside: array<f32>;
@group(0) @binding(5) var<storage, read_write> Out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= P.n) { return; }
  let plane = P.c * P.hw;
  let b = idx / plane;
  let within = idx % plane;        // c·HW + p
  let p = within % P.hw;
  let img = u32(Items[4u * b]);
  let r = Rank[img * P.hw + p];
  if (r >= Items[4u * b + 1u] && r < Items[4u * b + 2u]) {
    Out[idx] = Inside[select(0u, img, P.inside_per_image == 1u) * plane + within];
  } else {
    Out[idx] = Outside[select(0u, img, P.outside_per_image == 1u) * plane + within];
  }
}
