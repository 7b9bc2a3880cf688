/**
 * Plain references for the metrics' statistics, written differently from the library's:
 * ranks by counting (O(n²)), and SSIM the way scikit-image computes it (uniform filters over the
 * whole image with scipy's 'reflect' borders, then the border cropped), in float64.
 */

/** 1 + (values below) + (other equal values)/2: the average rank, by counting. */
export function countedRanks(v: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    let below = 0;
    let equal = 0;
    for (let j = 0; j < v.length; j++) {
      if (v[j]! < v[i]!) below++;
      else if (v[j] === v[i] && j !== i) equal++;
    }
    out.push(1 + below + equal / 2);
  }
  return out;
}

/** Spearman's ρ: Pearson's r of the counted ranks (NaN when a side is constant). */
export function spearmanReference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [ra, rb] = [countedRanks(a), countedRanks(b)];
  const n = ra.length;
  const ma = ra.reduce((s, v) => s + v, 0) / n;
  const mb = rb.reduce((s, v) => s + v, 0) / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

/** scipy.ndimage.uniform_filter(size) with mode 'reflect' (… c b a | a b c …). */
function uniformFilter(img: Float64Array, h: number, w: number, size: number): Float64Array {
  const r = (size - 1) / 2;
  const reflect = (i: number, n: number) => {
    let k = i;
    while (k < 0 || k >= n) k = k < 0 ? -k - 1 : 2 * n - k - 1;
    return k;
  };
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) s += img[reflect(y + dy, h) * w + reflect(x + dx, w)]!;
      out[y * w + x] = s / (size * size);
    }
  }
  return out;
}

/** skimage.metrics.structural_similarity(a, b, data_range=1) with its defaults. */
export function ssimReference(a: ArrayLike<number>, b: ArrayLike<number>, h: number, w: number): number {
  const [X, Y] = [Float64Array.from(a), Float64Array.from(b)];
  const f = (img: Float64Array) => uniformFilter(img, h, w, 7);
  const ux = f(X);
  const uy = f(Y);
  const uxx = f(X.map((v) => v * v));
  const uyy = f(Y.map((v) => v * v));
  const uxy = f(X.map((v, i) => v * Y[i]!));
  const covNorm = 49 / 48;
  const [c1, c2] = [0.01 ** 2, 0.03 ** 2];
  let total = 0;
  let count = 0;
  for (let y = 3; y < h - 3; y++) {
    for (let x = 3; x < w - 3; x++) {
      const i = y * w + x;
      const vx = covNorm * (uxx[i]! - ux[i]! ** 2);
      const vy = covNorm * (uyy[i]! - uy[i]! ** 2);
      const vxy = covNorm * (uxy[i]! - ux[i]! * uy[i]!);
      total += ((2 * ux[i]! * uy[i]! + c1) * (2 * vxy + c2)) / ((ux[i]! ** 2 + uy[i]! ** 2 + c1) * (vx + vy + c2));
      count++;
    }
  }
  return total / count;
}
