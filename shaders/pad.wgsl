// Padding (ONNX Pad) of any tensor of rank ≤ 6, and its exact adjoint (the gradient).
// Per dimension d with input size n, output size m = n + before + after (a negative pad crops),
// output coordinate o reads input coordinate c = o − before, mapped back into [0, n) by the mode:
//   mode 0, constant: c outside [0, n) reads `value`
//   mode 1, reflect:  c < 0 → −c, c ≥ n → 2(n − 1) − c   (mirror without repeating the edge; the
//                     wrapper checks every pad ≤ n − 1, so one reflection suffices)
//   mode 2, edge:     c clamped to [0, n − 1]
// Layout: any row-major tensor; shapes are right-aligned in rank 6 (unused leading dims are 1 with
// no padding).
// Workgroup: 256 threads, one element each; the grid may be folded into 2-D (flat index =
// gid.x + gid.y · num_workgroups.x · 256).
// Entry points (bindings: 1 = Src, 2 = Dst):
//   forward   Src = x, Dst = y; one thread per OUTPUT element.
//   backward  Src = dy, Dst = dx; one thread per INPUT element, a gather: in each dimension the
//             output coordinates that read input coordinate c form at most three runs (the copy
//             c + before; with reflect its two mirror images; with edge the whole border run), and
//             the thread sums dy over their product, in a fixed order. No atomics; deterministic.

struct Params {
  in_lo: vec4<u32>, in_hi: vec4<u32>,           // input shape, dims 0..3 and 4..5
  out_lo: vec4<u32>, out_hi: vec4<u32>,         // output shape
  before_lo: vec4<i32>, before_hi: vec4<i32>,   // pads before each dim (negative: crop)
  n: u32,         // number of threads
  mode: u32,      // 0 constant, 1 reflect, 2 edge
  value: f32,     // the constant
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Src: array<f32>;
@group(0) @binding(2) var<storage, read_write> Dst: array<f32>;

fn in_dim(d: u32) -> i32 {
  let s = array<u32, 6>(p.in_lo.x, p.in_lo.y, p.in_lo.z, p.in_lo.w, p.in_hi.x, p.in_hi.y);
  return i32(s[d]);
}

fn out_dim(d: u32) -> i32 {
  let s = array<u32, 6>(p.out_lo.x, p.out_lo.y, p.out_lo.z, p.out_lo.w, p.out_hi.x, p.out_hi.y);
  return i32(s[d]);
}

fn before(d: u32) -> i32 {
  let s = array<i32, 6>(p.before_lo.x, p.before_lo.y, p.before_lo.z, p.before_lo.w, p.before_hi.x, p.before_hi.y);
  return s[d];
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var rest = i;
  var src = 0;
  var stride = 1;
  var outside = false;
  for (var d = 5; d >= 0; d--) {
    let m = out_dim(u32(d));
    let n = in_dim(u32(d));
    let o = i32(rest % u32(m));
    rest = rest / u32(m);
    var c = o - before(u32(d));
    if (p.mode == 1u) {
      if (c < 0) { c = -c; }
      if (c >= n) { c = 2 * (n - 1) - c; }
    } else if (p.mode == 2u) {
      c = clamp(c, 0, n - 1);
    } else if (c < 0 || c >= n) {
      outside = true;
    }
    src += c * stride;
    stride *= n;
  }
  if (outside) {
    Dst[i] = p.value;
  } else {
    Dst[i] = Src[src];
  }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  // Per dimension: up to three runs [lo, hi) of output coordinates, their total length, and the
  // dimension's output stride.
  var lo: array<i32, 18>;
  var hi: array<i32, 18>;
  var count: array<i32, 6>;
  var ostride: array<i32, 6>;
  var rest = i;
  var total = 1;
  var stride = 1;
  for (var d = 5; d >= 0; d--) {
    let n = in_dim(u32(d));
    let m = out_dim(u32(d));
    let b = before(u32(d));
    let c = i32(rest % u32(n));
    rest = rest / u32(n);
    let k = u32(d) * 3u;
    lo[k] = c + b;
    hi[k] = c + b + 1;
    lo[k + 1u] = 0;
    hi[k + 1u] = 0;
    lo[k + 2u] = 0;
    hi[k + 2u] = 0;
    if (p.mode == 1u) {
      if (c >= 1) { lo[k + 1u] = b - c; hi[k + 1u] = b - c + 1; }
      if (c <= n - 2) { lo[k + 2u] = b + 2 * (n - 1) - c; hi[k + 2u] = lo[k + 2u] + 1; }
    } else if (p.mode == 2u) {
      if (c == 0) { lo[k] = 0; }
      if (c == n - 1) { hi[k] = m; }
    }
    var len = 0;
    for (var r = 0u; r < 3u; r++) {
      lo[k + r] = clamp(lo[k + r], 0, m);
      hi[k + r] = clamp(hi[k + r], lo[k + r], m);
      len += hi[k + r] - lo[k + r];
    }
    count[d] = len;
    ostride[d] = stride;
    stride *= m;
    total *= len;
  }
  var sum = 0.0;
  for (var t = 0; t < total; t++) {
    // Digit j_d of t (mixed radix over count) is the j-th output coordinate read from c in dim d.
    var q = t;
    var dst = 0;
    for (var d = 5; d >= 0; d--) {
      var j = q % count[d];
      q = q / count[d];
      let k = u32(d) * 3u;
      var o = 0;
      for (var r = 0u; r < 3u; r++) {
        let len = hi[k + r] - lo[k + r];
        if (j >= 0 && j < len) { o = lo[k + r] + j; }
        j -= len;
      }
      dst += o * ostride[d];
    }
    sum += Src[dst];
  }
  Dst[i] = sum;
}
