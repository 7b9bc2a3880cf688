/** Image files (PNG/JPEG in, PNG out), conversion to model input, and labelled grids. CPU only. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeImage,
  detectFormat,
  drawText,
  encodePng,
  imageToTensorData,
  readImage,
  textWidth,
  tileImages,
  writePng,
  type RgbaImage,
} from '../src/saliency/image.js';
import { ArgumentError } from '../src/runtime/errors.js';
import { expectClose } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'saliency-image-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A w×h image whose pixels all differ, with varying alpha. */
function pattern(w: number, h: number): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([(i * 7) % 256, (i * 13 + 50) % 256, (i * 29 + 100) % 256, 255 - ((i * 3) % 200)], 4 * i);
  return { width: w, height: h, data };
}

function solid(w: number, h: number, rgba: number[]): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set(rgba, 4 * i);
  return { width: w, height: h, data };
}

// Real files from Debian packages, where this machine has them.
const PNG_RGBA = '/usr/share/pixmaps/debian-logo.png'; // 48×48, 8-bit RGBA
const PNG_PALETTE = '/usr/share/gitweb/static/git-logo.png'; // 72×27, 8-bit colour map
const JPEG_FILE = '/usr/share/doc/nodejs/thin-white-stripe.jpg'; // 493×58, progressive

describe('PNG encode and decode', () => {
  it('round-trips exactly, alpha included', () => {
    const img = pattern(13, 7);
    const bytes = encodePng(img);
    expect(detectFormat(bytes)).toBe('png');
    const back = decodeImage(bytes);
    expect(back.width).toBe(13);
    expect(back.height).toBe(7);
    expect(back.data).toBeInstanceOf(Uint8ClampedArray);
    expect(Array.from(back.data)).toEqual(Array.from(img.data));
  });

  it('writePng writes atomically into a new directory and readImage reads it back', () => {
    const path = join(dir, 'nested', 'deeper', 'out.png');
    const img = pattern(5, 9);
    writePng(path, img);
    expect(readdirSync(join(dir, 'nested', 'deeper'))).toEqual(['out.png']); // no .partial left
    expect(Array.from(readImage(path).data)).toEqual(Array.from(img.data));
    // Overwriting replaces the file.
    writePng(path, solid(2, 2, [1, 2, 3, 255]));
    expect(readImage(path).width).toBe(2);
  });

  it('writePng reports a path it cannot write and leaves nothing behind', () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    expect(() => writePng(join(blocker, 'out.png'), pattern(2, 2))).toThrow(/writePng: cannot write .*a-file\/out\.png/);
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8ClampedArray(3) })).toThrow(/needs 16 bytes of RGBA, but has 3/);
  });
});

describe('reading real files', () => {
  it.skipIf(!existsSync(PNG_RGBA))('an RGBA PNG', () => {
    const img = readImage(PNG_RGBA);
    expect([img.width, img.height]).toEqual([48, 48]);
    expect(img.data.length).toBe(48 * 48 * 4);
    const alphas = new Set<number>();
    for (let i = 3; i < img.data.length; i += 4) alphas.add(img.data[i]!);
    expect(alphas.has(0)).toBe(true); // transparent corners
    expect(alphas.has(255)).toBe(true);
  });

  it.skipIf(!existsSync(PNG_PALETTE))('a palette PNG, expanded to RGBA', () => {
    const img = readImage(PNG_PALETTE);
    expect([img.width, img.height]).toEqual([72, 27]);
    expect(img.data.length).toBe(72 * 27 * 4);
    expect(new Set(Array.from(img.data)).size).toBeGreaterThan(2);
  });

  // Always there after npm ci (a dev dependency's screenshot): the JPEG path never goes untested.
  it('a baseline JPEG from an npm package: its size from the SOF0 header, opaque RGBA', () => {
    const file = 'node_modules/@vladmandic/human/assets/screenshot-facedetect.jpg';
    const bytes = new Uint8Array(readFileSync(file));
    // Walk the markers to the start-of-frame segment: [FF C0, length, precision, height, width].
    let at = 2;
    while (bytes[at + 1] !== 0xc0) at += 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
    const [height, width] = [(bytes[at + 5]! << 8) | bytes[at + 6]!, (bytes[at + 7]! << 8) | bytes[at + 8]!];
    const img = readImage(file);
    expect([img.width, img.height]).toEqual([width, height]);
    expect([width, height]).toEqual([800, 718]);
    expect(img.data.length).toBe(width * height * 4);
    let opaque = true;
    const greys = new Set<number>();
    for (let i = 0; i < img.data.length; i += 4) {
      opaque &&= img.data[i + 3] === 255;
      greys.add(img.data[i]! + img.data[i + 1]! + img.data[i + 2]!);
    }
    expect(opaque).toBe(true);
    expect(greys.size).toBeGreaterThan(100); // a screenshot with a photograph in it, not a flat fill
  });

  it.skipIf(!existsSync(JPEG_FILE))('a progressive JPEG, opaque RGBA', () => {
    const img = readImage(JPEG_FILE);
    expect([img.width, img.height]).toEqual([493, 58]);
    let opaque = true;
    let sum = 0;
    for (let i = 0; i < img.data.length; i += 4) {
      opaque &&= img.data[i + 3] === 255;
      sum += img.data[i]! + img.data[i + 1]! + img.data[i + 2]!;
    }
    expect(opaque).toBe(true);
    expect(sum).toBeGreaterThan(0);
    // Detected by content, not by name.
    const renamed = join(dir, 'photo.png');
    writeFileSync(renamed, readFileSync(JPEG_FILE));
    expect(readImage(renamed).width).toBe(493);
  });
});

describe('read errors: one clear ArgumentError each', () => {
  it('a missing file', () => {
    const path = join(dir, 'missing.png');
    expect(() => readImage(path)).toThrow(ArgumentError);
    expect(() => readImage(path)).toThrow(`${path}: no such file`);
  });

  it('a text file', () => {
    const path = join(dir, 'notes.png');
    writeFileSync(path, 'hello, world\n');
    expect(() => readImage(path)).toThrow(ArgumentError);
    expect(() => readImage(path)).toThrow(`${path} is not a PNG or JPEG image (it starts with bytes 68 65 6c 6c 6f 2c 20 77)`);
    const empty = join(dir, 'empty.jpg');
    writeFileSync(empty, '');
    expect(() => readImage(empty)).toThrow(/is not a PNG or JPEG image \(the file is empty\)/);
  });

  it('a directory', () => {
    expect(() => readImage(dir)).toThrow(/is a directory, not an image file/);
  });

  it('a truncated PNG', () => {
    const bytes = encodePng(pattern(32, 32));
    const path = join(dir, 'truncated.png');
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(() => readImage(path)).toThrow(ArgumentError);
    expect(() => readImage(path)).toThrow(new RegExp(`${path.replace(/[.]/g, '\\.')} is a corrupt or truncated PNG image \\(.+\\)`));
    // Only the signature: as corrupt as it gets.
    expect(() => decodeImage(bytes.subarray(0, 8), 'sig.png')).toThrow(/sig\.png is a corrupt or truncated PNG image/);
  });

  it.skipIf(!existsSync(JPEG_FILE))('a truncated JPEG', () => {
    const bytes = readFileSync(JPEG_FILE);
    expect(() => decodeImage(bytes.subarray(0, 200), 'cut.jpg')).toThrow(/cut\.jpg is a corrupt or truncated JPEG image/);
  });
});

describe('imageToTensorData', () => {
  // 2×2 grey 68·(0, 1, 2, 3): bilinear to 4×4 gives 68·(0, 0.25, 0.75, 1, …) / 255.
  const grey = (vs: number[]) => ({ width: 2, height: 2, data: Uint8ClampedArray.from(vs.flatMap((v) => [v, v, v, 255])) });
  const upsampled = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3].map((v) => (v * 68) / 255);

  it('2×2 → 4×4, one channel, bilinear with half-pixel centres', () => {
    const out = imageToTensorData(grey([0, 68, 136, 204]), { channels: 1, width: 4, height: 4, resize: 'bilinear' });
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(16);
    expectClose(out, upsampled, 1e-6, 0);
  });

  it('three channels are planar (NCHW); grey is luminance 0.299R + 0.587G + 0.114B', () => {
    const img: RgbaImage = { width: 2, height: 1, data: Uint8ClampedArray.from([255, 0, 0, 255, 0, 51, 255, 255]) };
    expectClose(imageToTensorData(img), [1, 0, 0, 0.2, 0, 1], 1e-7, 0);
    expectClose(imageToTensorData(img, { channels: 1 }), [0.299, 0.587 * 0.2 + 0.114], 1e-6, 0);
    const big = imageToTensorData(grey([0, 68, 136, 204]), { channels: 3, width: 4, height: 4 });
    expect(big.length).toBe(48);
    expectClose(big.subarray(32, 48), upsampled, 1e-6, 0); // blue plane
  });

  it('nearest resizing, and shrinking averages', () => {
    const near = imageToTensorData(grey([0, 68, 136, 204]), { channels: 1, width: 4, height: 4, resize: 'nearest' });
    expectClose(near, [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3].map((v) => (v * 68) / 255), 1e-6, 0);
    const one = imageToTensorData(grey([0, 68, 136, 204]), { channels: 1, width: 1, height: 1 });
    expectClose(one, [(1.5 * 68) / 255], 1e-6, 0);
  });

  it('composites transparent pixels over a background when asked', () => {
    const img: RgbaImage = { width: 1, height: 1, data: Uint8ClampedArray.from([255, 255, 255, 51]) };
    expectClose(imageToTensorData(img, { channels: 1 }), [1], 1e-6, 0);
    expectClose(imageToTensorData(img, { channels: 1, background: [0, 0, 0] }), [0.2], 1e-6, 0);
  });

  it('rejects bad options', () => {
    const img = grey([0, 0, 0, 0]);
    expect(() => imageToTensorData(img, { channels: 2 as never })).toThrow(/channels must be 1 or 3, got 2/);
    expect(() => imageToTensorData(img, { width: 0 })).toThrow(/positive integers, got 0×2/);
    expect(() => imageToTensorData(img, { resize: 'cubic' as never })).toThrow(/unknown resize mode "cubic"/);
  });
});

describe('text and tiles', () => {
  it('drawText draws the 5×7 glyphs', () => {
    const img = solid(6, 8, [255, 255, 255, 255]);
    drawText(img, 'I', 0, 0, { scale: 1, color: [0, 0, 0, 255] });
    const dark = (x: number, y: number) => img.data[4 * (y * 6 + x)] === 0;
    // 'I': a bar of three on the top and bottom rows, a stem in the middle column.
    expect([0, 1, 2, 3, 4].map((x) => dark(x, 0))).toEqual([false, true, true, true, false]);
    expect([0, 1, 2, 3, 4].map((x) => dark(x, 3))).toEqual([false, false, true, false, false]);
    expect([0, 1, 2, 3, 4].map((x) => dark(x, 6))).toEqual([false, true, true, true, false]);
    expect(textWidth('I', 1)).toBe(5);
    expect(textWidth('Grad-CAM', 2)).toBe((8 * 6 - 1) * 2);
  });

  it('every printable ASCII character but space has a glyph; others draw as "?"', () => {
    for (let c = 33; c < 127; c++) {
      const img = solid(5, 8, [255, 255, 255, 255]);
      drawText(img, String.fromCharCode(c), 0, 0, { scale: 1 });
      expect(img.data.some((v) => v === 0), `glyph for ${String.fromCharCode(c)}`).toBe(true);
    }
    const a = solid(5, 8, [255, 255, 255, 255]);
    const b = solid(5, 8, [255, 255, 255, 255]);
    drawText(a, 'é', 0, 0, { scale: 1 });
    drawText(b, '?', 0, 0, { scale: 1 });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
  });

  it('tileImages: grid size, tile placement and labels in the strip below', () => {
    const images = [solid(40, 30, [255, 0, 0, 255]), solid(40, 30, [0, 255, 0, 255]), solid(20, 10, [0, 0, 255, 255])];
    const gap = 2;
    const out = tileImages(images, { columns: 2, gap, background: [255, 255, 255, 255], labels: ['vanilla', 'cam', 'x'] });
    const labelH = 22; // 11 · scale 2
    expect(out.width).toBe(2 * 40 + 3 * gap);
    expect(out.height).toBe(2 * (30 + labelH) + 3 * gap);
    const at = (x: number, y: number) => Array.from(out.data.subarray(4 * (y * out.width + x), 4 * (y * out.width + x) + 4));
    expect(at(0, 0)).toEqual([255, 255, 255, 255]);
    expect(at(gap, gap)).toEqual([255, 0, 0, 255]);
    expect(at(gap + 40 + gap, gap)).toEqual([0, 255, 0, 255]);
    // The small image is centred in its 40×30 cell.
    const row2 = gap + 30 + labelH + gap;
    expect(at(gap + 10, row2 + 10)).toEqual([0, 0, 255, 255]);
    expect(at(gap + 9, row2 + 10)).toEqual([255, 255, 255, 255]);
    // Each label strip has dark (label) pixels inside its own cell, none outside it.
    const strip = (cellX: number, top: number) => {
      let dark = 0;
      for (let y = top; y < top + labelH; y++) for (let x = cellX; x < cellX + 40; x++) if (at(x, y)[0] === 0) dark++;
      return dark;
    };
    expect(strip(gap, gap + 30)).toBeGreaterThan(0);
    expect(strip(gap + 40 + gap, gap + 30)).toBeGreaterThan(0);
    expect(strip(gap, row2 + 30)).toBeGreaterThan(0);
    for (let y = 0; y < out.height; y++) expect(at(gap + 40, y)).toEqual([255, 255, 255, 255]); // the gap column
  });

  it('tileImages: no labels, one row by default, long labels shrink to fit, dark backgrounds get white text', () => {
    const images = [solid(12, 12, [9, 9, 9, 255]), solid(12, 12, [9, 9, 9, 255])];
    const plain = tileImages(images, { gap: 0 });
    expect([plain.width, plain.height]).toEqual([24, 12]);
    const out = tileImages(images, { gap: 1, background: [0, 0, 0], labels: ['a very long label', 'ok'] });
    expect([out.width, out.height]).toEqual([2 * 12 + 3, 12 + 22 + 2]);
    let white = 0;
    for (let i = 0; i < out.data.length; i += 4) if (out.data[i] === 255) white++;
    expect(white).toBeGreaterThan(0);
  });

  it('tileImages rejects bad input', () => {
    expect(() => tileImages([])).toThrow(/need at least one image/);
    expect(() => tileImages([solid(2, 2, [0, 0, 0, 255])], { labels: ['a', 'b'] })).toThrow(/got 2 labels for 1 images/);
    expect(() => tileImages([solid(2, 2, [0, 0, 0, 255])], { columns: 0 })).toThrow(/columns must be a positive integer/);
  });
});
