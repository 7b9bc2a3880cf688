// Softmax and log-softmax along one axis, and their backward passes.
// Layout: any row-major tensor seen as [outer, len, inner]; a "row" is the len values at
// base + k·inner (base = o·len·inner + i), k = 0..len-1, so any axis works without a transpose.
//   forward, softmax:        y = exp(x − max) / Σ exp(x − max)
//   forward, log-softmax:    y = x − max − log Σ exp(x − max)
//   backward, softmax:       dx = y · (dy − Σ dy·y)
//   backward, log-softmax:   dx = dy − exp(y) · Σ dy
// Entry points:
//   softmax_group:  one 256-thread workgroup per row, tree reductions in workgroup memory (long rows).
//   softmax_thread: one thread per row, adjacent threads on adjacent rows (short rows, or inner > 1
//                   where adjacent rows are adjacent in memory).
// Variants: LOG (log-softmax), BACKWARD (bindings DY, Y, Out instead of X, Out).
// Workgroup: 256 threads; the grid may be folded into 2-D when large.

struct Params {
  rows: u32,   // outer · inner
  len: u32,    // length of the softmax axis
  inner: u32,  // product of the dimensions after the axis (the stride along the axis)
}

@group(0) @binding(0) var<uniform> p: Params;
#if ${BACKWARD}
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
#else
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
#endif

const WG: u32 = 256u;

fn row_base(row: u32) -> u32 {
  return (row / p.inner) * p.len * p.inner + row % p.inner;
}

#if ${BACKWARD}
// The one sum the backward needs: Σ dy·y (softmax) or Σ dy (log-softmax).
fn sum_term(i: u32) -> f32 {
#if ${LOG}
  return DY[i];
#else
  return DY[i] * Y[i];
#endif
}

fn write(i: u32, s: f32) {
#if ${LOG}
  Out[i] = DY[i] - exp(Y[i]) * s;
#else
  Out[i] = Y[i] * (DY[i] - s);
#endif
}
#else
// m: the row's max; s: Σ exp(x − m).
fn write(i: u32, m: f32, s: f32) {
#if ${LOG}
  Out[i] = X[i] - m - log(s);
#else
  Out[i] = exp(X[i] - m) / s;
#endif
}
#endif

var<workgroup> shared_v: array<f32, WG>;

fn tree_sum(lid: u32, v: f32) -> f32 {
  shared_v[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { shared_v[lid] = shared_v[lid] + shared_v[lid + s]; }
    workgroupBarrier();
  }
  let r = shared_v[0];
  workgroupBarrier(); // everyone has read the result before shared_v is reused
  return r;
}

fn tree_max(lid: u32, v: f32) -> f32 {
  shared_v[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { shared_v[lid] = max(shared_v[lid], shared_v[lid + s]); }
    workgroupBarrier();
  }
  let r = shared_v[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn softmax_group(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x; // uniform across the workgroup
  if (row >= p.rows) { return; }
  let base = row_base(row);
#if ${BACKWARD}
  var s = 0.0;
  for (var k = lid; k < p.len; k += WG) { s += sum_term(base + k * p.inner); }
  s = tree_sum(lid, s);
  for (var k = lid; k < p.len; k += WG) { write(base + k * p.inner, s); }
#else
  // Threads with no element contribute the row's first value to the max (neutral).
  var m = X[base];
  for (var k = lid; k < p.len; k += WG) { m = max(m, X[base + k * p.inner]); }
  m = tree_max(lid, m);
  var s = 0.0;
  for (var k = lid; k < p.len; k += WG) { s += exp(X[base + k * p.inner] - m); }
  s = tree_sum(lid, s);
  for (var k = lid; k < p.len; k += WG) { write(base + k * p.inner, m, s); }
#endif
}

@compute @workgroup_size(WG)
fn softmax_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= p.rows) { return; }
  let base = row_base(row);
#if ${BACKWARD}
  var s = 0.0;
  for (var k = 0u; k < p.len; k++) { s += sum_term(base + k * p.inner); }
  for (var k = 0u; k < p.len; k++) { write(base + k * p.inner, s); }
#else
  var m = X[base];
  for (var k = 1u; k < p.len; k++) { m = max(m, X[base + k * p.inner]); }
  var s = 0.0;
  for (var k = 0u; k < p.len; k++) { s += exp(X[base + k * p.inner] - m); }
  for (var k = 0u; k < p.len; k++) { write(base + k * p.inner, m, s); }
#endif
}
