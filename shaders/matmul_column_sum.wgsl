// Column sums: Out[c] = Σ_r X[r, c] for a row-major [R, C] matrix X. This is the bias gradient of
// a linear layer (the sum of dy over the batch) and the batch reduction of a broadcast operand.
// Layout: row-major [R, C]; Out has C values.
// Workgroup: 16×16 threads for 16 adjacent columns: lane (tx, ty) sums rows ty, ty+16, … of column
// tx (each row read is 16 contiguous values), then the 16 partial sums of a column are added as a
// tree in workgroup memory. Grid: ⌈C/16⌉ workgroups, folded into 2-D beyond 65,535.
// Variants: none.

struct Params {
  R: u32,
  C: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;

var<workgroup> partial: array<array<f32, 16>, 16>;   // [ty][tx]

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let c = (wid.x + wid.y * nwg.x) * 16u + tx;
  var s = 0.0;
  if (c < p.C) {
    for (var r = ty; r < p.R; r += 16u) { s += X[r * p.C + c]; }
  }
  partial[ty][tx] = s;
  workgroupBarrier();
  for (var half = 8u; half > 0u; half >>= 1u) {
    if (ty < half) { partial[ty][tx] += partial[ty + half][tx]; }
    workgroupBarrier();
  }
  if (ty == 0u && c < p.C) { Out[c] = partial[0][tx]; }
}
