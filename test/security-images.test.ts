/**
 * Images from strangers: sizes are checked from the header before anything is allocated, the
 * inflated size of a PNG is capped, and only regular files are read. CPU only.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, SaliencyError } from '../src/runtime/errors.js';
import { DEFAULT_LIMITS, getLimits, setLimits } from '../src/runtime/limits.js';
import { decodeImage, encodePng, imageToTensorData, readImage } from '../src/saliency/image.js';

const dir = mkdtempSync(join(tmpdir(), 'saliency-security-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG with the given header fields and IDAT payload (zlib data). */
export function png(o: { width: number; height: number; depth?: number; colorType?: number; interlace?: number; idat: Uint8Array }): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(o.width, 0);
  ihdr.writeUInt32BE(o.height, 4);
  ihdr[8] = o.depth ?? 8;
  ihdr[9] = o.colorType ?? 6;
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = o.interlace ?? 0;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', o.idat), chunk('IEND', new Uint8Array(0))]));
}

/** A baseline JPEG header (SOI, SOF0) declaring width × height, and nothing after it. */
function jpegHeader(width: number, height: number): Uint8Array {
  const sof = [0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 255, width >> 8, width & 255, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new Uint8Array([0xff, 0xd8, ...sof, 0xff, 0xd9]);
}

const errorOf = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return null;
};

describe('image size limits', () => {
  it('a 74-byte PNG whose header claims 30000×30000 pixels is refused from the header', () => {
    const bytes = png({ width: 30000, height: 30000, idat: deflateSync(Buffer.alloc(10)) });
    expect(bytes.length).toBeLessThan(80);
    const before = process.memoryUsage().arrayBuffers;
    const err = errorOf(() => decodeImage(bytes, 'bomb.png'));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/bomb\.png is a 30000×30000 PNG image \(900\.0 megapixels\), more than the limit of 50\.0 megapixels \(raise it with .*maxImagePixels.*SALIENCY_MAX_IMAGE_PIXELS/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('a 1-bit PNG of 30000×30000 pixels: refused from the header too', () => {
    const bytes = png({ width: 30000, height: 30000, depth: 1, colorType: 0, idat: deflateSync(Buffer.alloc(3751 * 100)) });
    expect(() => decodeImage(bytes, 'bits.png')).toThrow(/bits\.png is a 30000×30000 PNG image .* more than the limit/);
  });

  it('the limit can be raised or lowered, per call and for the process', () => {
    const small = encodePng({ width: 40, height: 30, data: new Uint8ClampedArray(40 * 30 * 4).fill(200) });
    expect(decodeImage(small).width).toBe(40);
    expect(() => decodeImage(small, 'small.png', { limits: { maxImagePixels: 1000 } })).toThrow(/small\.png is a 40×30 PNG image \(1200 pixels\), more than the limit of 1000 pixels/);
    const before = setLimits({ maxImagePixels: 1000 });
    try {
      expect(getLimits().maxImagePixels).toBe(1000);
      expect(() => decodeImage(small)).toThrow(FormatError);
      expect(decodeImage(small, 'x', { limits: { maxImagePixels: 1200 } }).height).toBe(30);
    } finally {
      setLimits(before);
    }
    expect(getLimits()).toEqual(DEFAULT_LIMITS);
    expect(() => setLimits({ maxImagePixels: -1 })).toThrow(/maxImagePixels must be a positive integer/);
    expect(() => setLimits({ nonsense: 1 } as never)).toThrow(/unknown limit 'nonsense'/);
  });

  it('a 1×1 interlaced PNG whose data inflates to 64 MB is refused by the inflate cap', () => {
    const bytes = png({ width: 1, height: 1, interlace: 1, idat: deflateSync(Buffer.alloc(64 * 1024 * 1024)) });
    expect(bytes.length).toBeLessThan(100_000);
    const err = errorOf(() => decodeImage(bytes, 'inflate.png'));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/inflate\.png: its image data inflates to more than the 5 bytes a 1×1 image needs/);
  });

  it('an interlaced PNG of the right size still decodes', () => {
    // 3×2 grey 8-bit, Adam7: pass 1 (0,0), pass 2 (2,0)… Easiest check: pngjs reads what we make
    // for a non-interlaced image, and the interlaced decode path is exercised with exact-size data.
    const w = 3;
    const h = 2;
    // Adam7 pass sizes for 3×2: p1 1×1, p2 0×1 (none), p3 0, p4 1×1? Built from the formula instead.
    const passes = [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ];
    const raw: number[] = [];
    const grey = (x: number, y: number) => 40 * (y * w + x) + 10;
    for (const [x0, y0, dx, dy] of passes) {
      const cols = Math.max(0, Math.ceil((w - x0!) / dx!));
      const rows = Math.max(0, Math.ceil((h - y0!) / dy!));
      if (!cols || !rows) continue;
      for (let r = 0; r < rows; r++) {
        raw.push(0);
        for (let c = 0; c < cols; c++) raw.push(grey(x0! + c * dx!, y0! + r * dy!));
      }
    }
    const img = decodeImage(png({ width: w, height: h, colorType: 0, interlace: 1, idat: deflateSync(Buffer.from(raw)) }));
    expect([img.width, img.height]).toEqual([3, 2]);
    const greys = [];
    for (let p = 0; p < 6; p++) greys.push(img.data[4 * p]);
    expect(greys).toEqual([10, 50, 90, 130, 170, 210]);
  });

  it('a JPEG whose frame header claims 30000×30000 pixels is refused from the header', () => {
    const err = errorOf(() => decodeImage(jpegHeader(30000, 30000), 'bomb.jpg'));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/bomb\.jpg is a 30000×30000 JPEG image \(900\.0 megapixels\), more than the limit of 50\.0 megapixels/);
    expect(() => decodeImage(jpegHeader(200, 100), 'small.jpg', { limits: { maxImagePixels: 10_000 } })).toThrow(/small\.jpg is a 200×100 JPEG image/);
  });

  it('imageToTensorData refuses an output size beyond the pixel limit before allocating', () => {
    const img = { width: 2, height: 2, data: new Uint8ClampedArray(16) };
    expect(() => imageToTensorData(img, { width: 20000, height: 20000 })).toThrow(/20000×20000 .* more than the limit/);
  });
});

describe('image files', () => {
  it('a symlink to /dev/zero is refused: only regular files are read', () => {
    const link = join(dir, 'zero.png');
    symlinkSync('/dev/zero', link);
    const err = errorOf(() => readImage(link));
    expect(err).toBeInstanceOf(SaliencyError);
    expect((err as Error).message).toMatch(/zero\.png is not a regular file \(a character device\)/);
  });

  it('a file over the byte limit is refused before it is read', () => {
    const file = join(dir, 'big.png');
    writeFileSync(file, encodePng({ width: 64, height: 64, data: new Uint8ClampedArray(64 * 64 * 4).map((_, i) => (i * 7919) % 251) }));
    expect(() => readImage(file, { limits: { maxImageBytes: 100 } })).toThrow(/big\.png is \d+ bytes, more than the limit of 100/);
    expect(readImage(file).width).toBe(64);
  });
});
