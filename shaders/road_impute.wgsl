// ROAD's noisy linear imputation (Rong et al. 2022), solved by conjugate gradients on the GPU.
//
// Item b = Items[4b .. 4b+3] = (img, lo, hi, key) removes the pixels of image `img` whose rank
// lies in [lo, hi) (Rank[img, p], 0 = most salient). Each removed pixel p takes the weighted mean
// of its 8 neighbours n: weight 1/6 for the 4 direct neighbours, 1/12 for the 4 diagonal ones,
// renormalised over the neighbours that exist at the border; kept pixels stay fixed. With
// s_p = Σ_n w_n over p's existing neighbours that is, per channel,
//
//   s_p v_p − Σ_{n removed} w_n v_n = Σ_{n kept} w_n x_n      for every removed p,
//
// i.e. (D − K) v = b, the imputation equations each multiplied by s_p: a symmetric, positive
// definite system (weakly diagonally dominant, connected, with at least one kept pixel), so
// conjugate gradients apply. It starts from v = 0 (residual r = b) and stops when the relative
// residual ‖r‖/‖b‖ ≤ tol (tol2 = tol²); b = 0 gives v = 0 at once. Then Gaussian noise N(0, σ²)
// is added to the imputed pixels only, from a counter-based hash of (seed, key, c, p), so the same
// seed gives the same noise whatever the batch.
//
// One workgroup (256 threads) solves one system s = b·C + c; each thread owns the pixels
// p ≡ lid (mod 256). A dispatch runs up to `iterations` CG steps per system and may be repeated:
// the state (r, p, ρ = r·r, ‖b‖², iterations, done) lives in buffers. Out holds the image being
// imputed [B, C, H, W]; Work holds r, p and q = A p, each [B, C, H, W]; State [B·C, 4].

struct Params {
  systems: u32,     // B·C
  c: u32,
  h: u32,
  w: u32,
  start: u32,       // 1 on the first dispatch: set v = 0, r = p = b
  iterations: u32,  // CG steps this dispatch may take per system
  seed: u32,
  tol2: f32,
  sigma: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Items: array<i32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> Rank: array<i32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
@group(0) @binding(5) var<storage, read_write> Work: array<f32>;
@group(0) @binding(6) var<storage, read_write> State: array<f32>;

const WG: u32 = 256u;
const DIRECT: f32 = 1.0 / 6.0;
const DIAGONAL: f32 = 1.0 / 12.0;

var<workgroup> partial: array<f32, 256>;
var<workgroup> shared_value: f32;

// Σ over the workgroup of each thread's v, the same value in every thread (a uniform value).
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { shared_value = partial[0]; }
  return workgroupUniformLoad(&shared_value);
}

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// N(0, 1) from two hashed uniforms in (0, 1) (Box–Muller).
fn normal(stream: u32, counter: u32) -> f32 {
  let u1 = (f32(pcg((2u * counter) ^ stream) >> 8u) + 0.5) / 16777216.0;
  let u2 = (f32(pcg((2u * counter + 1u) ^ stream) >> 8u) + 0.5) / 16777216.0;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Weight of neighbour (dy, dx) of a pixel.
fn weight(dy: i32, dx: i32) -> f32 {
  return select(DIRECT, DIAGONAL, dy != 0 && dx != 0);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lid = lid3.x;
  let s = wid.x + wid.y * nwg.x;
  if (s >= P.systems) { return; }
  let hw = P.h * P.w;
  let b = s / P.c;
  let c = s % P.c;
  let img = u32(Items[4u * b]);
  let lo = Items[4u * b + 1u];
  let hi = Items[4u * b + 2u];
  let key = u32(Items[4u * b + 3u]);
  let xs = (img * P.c + c) * hw;      // this channel of the source image in X
  let os = s * hw;                    // this system in Out and in each part of Work
  let total = P.systems * hw;         // Work = [r | p | q]
  let rank0 = img * hw;

  if (P.start == 1u) {
    var acc = 0.0;
    for (var p = lid; p < hw; p += WG) {
      let rk = Rank[rank0 + p];
      if (rk >= lo && rk < hi) {
        // b_p = Σ over kept neighbours of w_n x_n.
        let y = i32(p / P.w);
        let x = i32(p % P.w);
        var rhs = 0.0;
        for (var dy = -1; dy <= 1; dy++) {
          for (var dx = -1; dx <= 1; dx++) {
            let ny = y + dy;
            let nx = x + dx;
            if ((dy == 0 && dx == 0) || ny < 0 || nx < 0 || ny >= i32(P.h) || nx >= i32(P.w)) { continue; }
            let n = u32(ny) * P.w + u32(nx);
            let rn = Rank[rank0 + n];
            if (rn < lo || rn >= hi) { rhs += weight(dy, dx) * X[xs + n]; }
          }
        }
        Out[os + p] = 0.0;
        Work[os + p] = rhs;             // r = b − A·0
        Work[total + os + p] = rhs;     // p = r
        acc += rhs * rhs;
      } else {
        Out[os + p] = X[xs + p];
        Work[os + p] = 0.0;
        Work[total + os + p] = 0.0;
      }
      Work[2u * total + os + p] = 0.0;
    }
    let rr = workgroup_sum(acc, lid);
    if (lid == 0u) {
      State[4u * s] = rr;
      State[4u * s + 1u] = rr;
      State[4u * s + 2u] = 0.0;
      State[4u * s + 3u] = 0.0;
    }
  }
  storageBarrier();
  workgroupBarrier();
  if (lid == 0u) { shared_value = State[4u * s]; }
  var rho = workgroupUniformLoad(&shared_value);
  if (lid == 0u) { shared_value = State[4u * s + 1u]; }
  let bb = workgroupUniformLoad(&shared_value);
  if (lid == 0u) { shared_value = State[4u * s + 2u]; }
  var done_iterations = workgroupUniformLoad(&shared_value);
  if (lid == 0u) { shared_value = State[4u * s + 3u]; }
  let finished = workgroupUniformLoad(&shared_value);
  if (finished != 0.0) { return; }

  var converged = rho <= P.tol2 * bb;
  for (var k = 0u; k < P.iterations; k++) {
    if (converged) { break; }
    // q = A p over the removed pixels (p is 0 at kept ones), and p·q.
    var acc = 0.0;
    for (var p = lid; p < hw; p += WG) {
      let rk = Rank[rank0 + p];
      if (rk < lo || rk >= hi) { continue; }
      let y = i32(p / P.w);
      let x = i32(p % P.w);
      var diag = 0.0;
      var off = 0.0;
      for (var dy = -1; dy <= 1; dy++) {
        for (var dx = -1; dx <= 1; dx++) {
          let ny = y + dy;
          let nx = x + dx;
          if ((dy == 0 && dx == 0) || ny < 0 || nx < 0 || ny >= i32(P.h) || nx >= i32(P.w)) { continue; }
          let wn = weight(dy, dx);
          diag += wn;
          off += wn * Work[total + os + u32(ny) * P.w + u32(nx)];
        }
      }
      let pp = Work[total + os + p];
      let q = diag * pp - off;
      Work[2u * total + os + p] = q;
      acc += pp * q;
    }
    let pq = workgroup_sum(acc, lid);
    if (!(pq > 0.0)) {
      converged = true;
      break;
    }
    let alpha = rho / pq;
    acc = 0.0;
    for (var p = lid; p < hw; p += WG) {
      let rk = Rank[rank0 + p];
      if (rk < lo || rk >= hi) { continue; }
      Out[os + p] += alpha * Work[total + os + p];
      let r = Work[os + p] - alpha * Work[2u * total + os + p];
      Work[os + p] = r;
      acc += r * r;
    }
    let rho_next = workgroup_sum(acc, lid);
    let beta = rho_next / rho;
    rho = rho_next;
    for (var p = lid; p < hw; p += WG) {
      let rk = Rank[rank0 + p];
      if (rk < lo || rk >= hi) { continue; }
      Work[total + os + p] = Work[os + p] + beta * Work[total + os + p];
    }
    // Neighbours' new p must be visible to every thread before the next q = A p.
    storageBarrier();
    workgroupBarrier();
    done_iterations += 1.0;
    converged = rho <= P.tol2 * bb;
  }

  if (converged) {
    // The noise, on the imputed pixels only.
    let stream = pcg(P.seed ^ pcg(key));
    for (var p = lid; p < hw; p += WG) {
      let rk = Rank[rank0 + p];
      if (rk >= lo && rk < hi) { Out[os + p] += P.sigma * normal(stream, c * hw + p); }
    }
  }
  if (lid == 0u) {
    State[4u * s] = rho;
    State[4u * s + 2u] = done_iterations;
    State[4u * s + 3u] = select(0.0, 1.0, converged);
  }
}
