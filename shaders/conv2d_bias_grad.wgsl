// 2-D convolution bias gradient db[c] = sum over n, h, w of dy[n, c, h, w].
// Layout: NCHW dy, db [C].
// Workgroup: 256 threads per channel; each thread sums a strided slice of every image's plane,
// then a tree reduction in workgroup memory. Grid: one workgroup per channel, folded into 2-D.

struct Params {
  batch: u32,
  channels: u32,
  hw: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> Db: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= p.channels) { return; }
  var s = 0.0;
  for (var n = 0u; n < p.batch; n++) {
    let base = (n * p.channels + c) * p.hw;
    for (var i = t; i < p.hw; i += 256u) { s += Dy[base + i]; }
  }
  partial[t] = s;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half >>= 1u) {
    if (t < half) { partial[t] += partial[t + half]; }
    workgroupBarrier();
  }
  if (t == 0u) { Db[c] = partial[0]; }
}
