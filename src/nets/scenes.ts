/**
 * Synthetic detection scenes: Fashion-MNIST items pasted at random positions and scales on a
 * square canvas with clutter, each with its tight bounding box and class. Seeded: the same seed
 * and source images give the same scenes.
 */
import { ArgumentError } from '../runtime/errors.js';
import { iou } from './boxes.js';
import { Rng } from './data.js';

export interface Scene {
  /** size × size pixels in [0, 1], row-major, one channel. */
  image: Float32Array;
  /** [x1, y1, x2, y2] in pixels (x2, y2 exclusive edges). */
  boxes: [number, number, number, number][];
  labels: number[];
}

export interface SceneOptions {
  /** Canvas side in pixels (default 96). */
  size?: number;
  /** Objects per scene: 1 to maxObjects (default 3). */
  maxObjects?: number;
  /** Smallest and largest pasted item side in pixels (default 24 and 44). */
  minScale?: number;
  maxScale?: number;
  /** Clutter blobs per scene: 0 to this (default 4), plus low background noise. */
  clutter?: number;
}

/** Source items: 28×28 images in [0, 1] with labels (e.g. from loadFashionMnist). */
export interface SceneSource {
  images: Float32Array;
  labels: ArrayLike<number>;
  count: number;
}

/** Scene `index` of the stream defined by `seed` (each scene has its own generator). */
export function generateScene(source: SceneSource, seed: number, index: number, options: SceneOptions = {}): Scene {
  const { size = 96, maxObjects = 3, minScale = 24, maxScale = 44, clutter = 4 } = options;
  if (!(minScale >= 8 && maxScale >= minScale && maxScale <= size)) {
    throw new ArgumentError(`scenes: need 8 ≤ minScale ≤ maxScale ≤ size, got ${minScale}, ${maxScale}, ${size}`);
  }
  if (source.count < 1) throw new ArgumentError('scenes: the source has no images');
  const rng = new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const image = new Float32Array(size * size);
  for (let i = 0; i < image.length; i++) image[i] = Math.max(0, rng.normal(0, 0.03));
  const blobs = rng.int(clutter + 1);
  for (let b = 0; b < blobs; b++) {
    const w = 2 + rng.int(7);
    const h = 2 + rng.int(7);
    const x0 = rng.int(size - w);
    const y0 = rng.int(size - h);
    const v = rng.uniform(0.1, 0.4);
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) image[y * size + x] = Math.max(image[y * size + x]!, v);
  }
  const boxes: Scene['boxes'] = [];
  const labels: number[] = [];
  const wanted = 1 + rng.int(maxObjects);
  for (let attempt = 0; attempt < 30 && boxes.length < wanted; attempt++) {
    const k = rng.int(source.count);
    const side = minScale + rng.int(maxScale - minScale + 1);
    const x0 = rng.int(size - side + 1);
    const y0 = rng.int(size - side + 1);
    const item = resizeItem(source.images.subarray(k * 784, (k + 1) * 784), side);
    const box = tightBox(item, side, x0, y0);
    if (!box || boxes.some((b) => iou(b, box) > 0.2)) continue;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const p = (y0 + y) * size + x0 + x;
        image[p] = Math.min(1, Math.max(image[p]!, item[y * side + x]!));
      }
    }
    boxes.push(box);
    labels.push(source.labels[k]!);
  }
  return { image, boxes, labels };
}

/** Bilinear resize (half-pixel centres) of a 28×28 item to side×side. */
function resizeItem(src: Float32Array, side: number): Float32Array {
  const out = new Float32Array(side * side);
  const scale = 28 / side;
  for (let y = 0; y < side; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scale - 0.5, 0), 27);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, 27);
    const ly = sy - y0;
    for (let x = 0; x < side; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scale - 0.5, 0), 27);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, 27);
      const lx = sx - x0;
      const top = src[y0 * 28 + x0]! * (1 - lx) + src[y0 * 28 + x1]! * lx;
      const bottom = src[y1 * 28 + x0]! * (1 - lx) + src[y1 * 28 + x1]! * lx;
      out[y * side + x] = top * (1 - ly) + bottom * ly;
    }
  }
  return out;
}

/** The bounding box of the item's visible pixels (> 0.1), placed at (x0, y0). */
function tightBox(item: Float32Array, side: number, x0: number, y0: number): [number, number, number, number] | null {
  let [minX, minY, maxX, maxY] = [side, side, -1, -1];
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      if (item[y * side + x]! > 0.1) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
    }
  }
  return maxX < 0 ? null : [x0 + minX, y0 + minY, x0 + maxX + 1, y0 + maxY + 1];
}
