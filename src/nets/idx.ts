/**
 * Reader for the IDX files of MNIST and Fashion-MNIST (Node only: it reads the file system).
 *
 *   [magic: 0x00 0x00 type rank] [rank × u32 big-endian sizes] [data, row-major]
 *
 * Only unsigned bytes (type 0x08) are supported: labels have magic 0x00000801, images 0x00000803.
 * A `.gz` file (as Debian's `dataset-fashion-mnist` package ships them) is gunzipped transparently.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ArgumentError } from '../runtime/errors.js';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

import { FASHION_CLASSES } from './classes.js';

export { FASHION_CLASSES };

const INSTALL_HELP =
  "Fashion-MNIST comes from Debian's 'dataset-fashion-mnist' package (apt-get install dataset-fashion-mnist), " +
  `which puts the IDX files in ${FASHION_MNIST_DIR}/`;

/** Parses IDX bytes (already gunzipped). `source` names the file in error messages. */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxArray {
  if (bytes.length < 4) throw new ArgumentError(`${source}: ${bytes.length} bytes is too short for an IDX header`);
  const magic = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const rank = bytes[3]!;
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || rank < 1) {
    throw new ArgumentError(
      `${source}: bad IDX magic number 0x${magic.toString(16).padStart(8, '0')} ` +
        '(expected 0x00000801 for labels, 0x00000803 for images, or another unsigned-byte IDX file)',
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new ArgumentError(`${source}: truncated header (${bytes.length} bytes; a rank-${rank} header needs ${headerBytes})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const available = bytes.length - headerBytes;
  if (available < count) {
    throw new ArgumentError(`${source}: truncated data: shape [${shape.join(', ')}] needs ${count} bytes, the file has ${available}`);
  }
  return { shape, data: bytes.subarray(headerBytes, headerBytes + count) };
}

/** Reads an IDX file; a name ending in `.gz` is gunzipped first. */
export function readIdx(path: string): IdxArray {
  if (!existsSync(path)) {
    throw new ArgumentError(`IDX file not found: ${path}. ${INSTALL_HELP}`);
  }
  let bytes: Uint8Array = readFileSync(path);
  if (path.endsWith('.gz') || (bytes[0] === 0x1f && bytes[1] === 0x8b)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new ArgumentError(`${path}: could not gunzip: ${(e as Error).message} (is the file truncated?)`);
    }
  }
  return parseIdx(bytes, path);
}

export interface FashionMnist {
  /** count × 784 pixels in [0, 1], each image row-major 28 × 28 (one channel). */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  classNames: readonly string[];
}

/** The first existing file of `names` in `dir` (the .gz files of the Debian package, or gunzipped ones). */
function findFile(dir: string, names: string[]): string {
  for (const n of names) {
    const p = join(dir, n);
    if (existsSync(p)) return p;
  }
  throw new ArgumentError(`Fashion-MNIST file ${names[0]} not found in ${dir}. ${INSTALL_HELP}`);
}

export interface LoadOptions {
  /** Keep only the first `limit` images (the files are still read whole). */
  limit?: number;
}

/** Loads the Fashion-MNIST training (60,000) or test (10,000) split. */
export function loadFashionMnist(split: 'train' | 'test', dir = FASHION_MNIST_DIR, options: LoadOptions = {}): FashionMnist {
  if (split !== 'train' && split !== 'test') throw new ArgumentError(`loadFashionMnist: split must be 'train' or 'test', got '${String(split)}'`);
  const { limit = Infinity } = options;
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 1)) throw new ArgumentError(`loadFashionMnist: limit must be a positive integer, got ${limit}`);
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgPath = findFile(dir, [`${prefix}-images-idx3-ubyte.gz`, `${prefix}-images-idx3-ubyte`]);
  const lblPath = findFile(dir, [`${prefix}-labels-idx1-ubyte.gz`, `${prefix}-labels-idx1-ubyte`]);
  const img = readIdx(imgPath);
  const lbl = readIdx(lblPath);
  if (img.shape.length !== 3 || img.shape[1] !== 28 || img.shape[2] !== 28) {
    throw new ArgumentError(`${imgPath}: expected images of shape [N, 28, 28], got [${img.shape.join(', ')}]`);
  }
  if (lbl.shape.length !== 1 || lbl.shape[0] !== img.shape[0]) {
    throw new ArgumentError(`${lblPath}: expected ${img.shape[0]} labels, got shape [${lbl.shape.join(', ')}]`);
  }
  for (let i = 0; i < lbl.data.length; i++) {
    if (lbl.data[i]! >= FASHION_CLASSES.length) throw new ArgumentError(`${lblPath}: label ${lbl.data[i]} at index ${i} is not a class (0..9)`);
  }
  const count = Math.min(limit, img.shape[0]!);
  const pixels = img.data;
  const images = new Float32Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = pixels[i]! / 255;
  return { images, labels: lbl.data.slice(0, count), count, classNames: FASHION_CLASSES };
}
