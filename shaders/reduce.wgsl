// Reductions (sum, max with first-argmax) over any set of axes, and max's backward (gather).
// Layout: any row-major tensor. The wrapper merges adjacent dimensions that are all reduced or all
// kept, so an input is seen as up to 4 kept groups (that number the outputs, row-major) and up to 4
// reduced groups (that number the R reduced elements of one output, row-major), each group with its
// element stride in X. The reduction may be split into `chunks` pieces per output, written as
// partials [n_out, chunks] that a second dispatch reduces (with INDEX_IN carrying argmax indices).
// Entry points:
//   reduce_group:  one 256-thread workgroup per (output, chunk), tree reduction in workgroup memory;
//                  for long reductions whose innermost reduced dimension is contiguous.
//   reduce_thread: one thread per (output, chunk), adjacent threads on adjacent outputs (coalesced
//                  when the innermost dimension is kept); for short reductions or reductions over
//                  outer axes.
//   max_scatter:   max's backward: writes dy[o] at the argmax of output o in a zero-filled dx.
// Variants: IS_MAX (max instead of sum; argmax ties go to the lowest reduced index), INDEX_OUT
// (also write the argmax as i32), INDEX_IN (candidate indices come from IdxIn instead of position).
// Workgroup: 256 threads; the workgroup grid may be folded into 2-D when large.

struct Params {
  kept_shape: vec4<u32>,
  kept_stride: vec4<u32>,
  red_shape: vec4<u32>,
  red_stride: vec4<u32>,
  n_kept: u32,     // kept groups used
  n_red: u32,      // reduced groups used
  n_out: u32,      // outputs
  r_len: u32,      // reduced elements per output
  chunks: u32,     // pieces per output
  chunk_len: u32,  // reduced elements per piece
  scale: f32,      // multiplies the result (1/R for a mean)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
#if ${INDEX_OUT}
@group(0) @binding(3) var<storage, read_write> IdxOut: array<i32>;
#endif
#if ${INDEX_IN}
@group(0) @binding(4) var<storage, read> IdxIn: array<i32>;
#endif

const WG: u32 = 256u;

// Offset in X of the first element of output o.
fn kept_offset(o: u32) -> u32 {
  var rest = o;
  var off = 0u;
  for (var g = i32(p.n_kept) - 1; g >= 0; g--) {
    let s = p.kept_shape[g];
    off += (rest % s) * p.kept_stride[g];
    rest = rest / s;
  }
  return off;
}

// Offset in X of reduced element r, relative to its output's first element.
fn red_offset(r: u32) -> u32 {
  if (p.n_red == 1u) { return r * p.red_stride[0]; }
  var rest = r;
  var off = 0u;
  for (var g = i32(p.n_red) - 1; g >= 0; g--) {
    let s = p.red_shape[g];
    off += (rest % s) * p.red_stride[g];
    rest = rest / s;
  }
  return off;
}

// The running value: a sum, or a max with the index of its first occurrence (-1 = none yet).
struct Acc {
  v: f32,
  i: i32,
}

fn acc_init() -> Acc {
  return Acc(0.0, -1);
}

// Adds element (v, i) to an accumulator that has seen only lower indices.
fn acc_push(a: Acc, v: f32, i: i32) -> Acc {
#if ${IS_MAX}
  if (a.i < 0 || v > a.v) { return Acc(v, i); }
  return a;
#else
  return Acc(a.v + v, 0);
#endif
}

// Combines two accumulators over disjoint index sets; ties go to the lower index.
fn acc_merge(a: Acc, b: Acc) -> Acc {
#if ${IS_MAX}
  if (b.i >= 0 && (a.i < 0 || b.v > a.v || (b.v == a.v && b.i < a.i))) { return b; }
  return a;
#else
  return Acc(a.v + b.v, 0);
#endif
}

fn load(base: u32, r: u32) -> Acc {
  let off = base + red_offset(r);
#if ${INDEX_IN}
  return Acc(X[off], IdxIn[off]);
#else
  return Acc(X[off], i32(r));
#endif
}

fn store(slot: u32, a: Acc) {
  Out[slot] = a.v * p.scale;
#if ${INDEX_OUT}
  IdxOut[slot] = a.i;
#endif
}

var<workgroup> shared_v: array<f32, WG>;
#if ${IS_MAX}
var<workgroup> shared_i: array<i32, WG>;
#endif

@compute @workgroup_size(WG)
fn reduce_group(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let slot = wid.x + wid.y * nwg.x; // = o * chunks + c, uniform across the workgroup
  if (slot >= p.n_out * p.chunks) { return; }
  let o = slot / p.chunks;
  let c = slot % p.chunks;
  let base = kept_offset(o);
  let r0 = c * p.chunk_len;
  let r1 = min(r0 + p.chunk_len, p.r_len);
  var a = acc_init();
  for (var r = r0 + lid; r < r1; r += WG) {
    let e = load(base, r);
    a = acc_push(a, e.v, e.i);
  }
  shared_v[lid] = a.v;
#if ${IS_MAX}
  shared_i[lid] = a.i;
#endif
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
#if ${IS_MAX}
      let m = acc_merge(Acc(shared_v[lid], shared_i[lid]), Acc(shared_v[lid + s], shared_i[lid + s]));
      shared_v[lid] = m.v;
      shared_i[lid] = m.i;
#else
      shared_v[lid] = shared_v[lid] + shared_v[lid + s];
#endif
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
#if ${IS_MAX}
    store(slot, Acc(shared_v[0], shared_i[0]));
#else
    store(slot, Acc(shared_v[0], 0));
#endif
  }
}

@compute @workgroup_size(WG)
fn reduce_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= p.n_out * p.chunks) { return; }
  let o = t % p.n_out;
  let c = t / p.n_out;
  let base = kept_offset(o);
  let r0 = c * p.chunk_len;
  let r1 = min(r0 + p.chunk_len, p.r_len);
  var a = acc_init();
  for (var r = r0; r < r1; r++) {
    let e = load(base, r);
    a = acc_push(a, e.v, e.i);
  }
  store(o * p.chunks + c, a);
}

#if ${INDEX_OUT}
// Max's backward: Out (zero-filled, the input's shape) receives X[o] (the output gradient) at the
// argmax IdxOut[o] of every output o. One thread per output.
@compute @workgroup_size(WG)
fn max_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= p.n_out) { return; }
  Out[kept_offset(o) + red_offset(u32(IdxOut[o]))] = X[o];
}
#endif
