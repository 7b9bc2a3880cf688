/**
 * Image files (Node only: uses node:fs). PNG and JPEG in, PNG out, through the pngjs and jpeg-js
 * libraries; plus conversion of an image to model input, and an overview grid with text labels.
 *
 * - `readImage(path)`, `decodeImage(bytes)`: PNG or JPEG (told apart by their magic bytes, not the
 *   file name) → `RgbaImage`. Images from strangers are safe to decode: the size is checked from
 *   the header against `maxImagePixels` (src/runtime/limits.ts) before anything is allocated, a
 *   PNG's inflated data is capped at what its header implies, and only regular files are read.
 * - `writePng(path, img)` (atomic), `encodePng(img)`.
 * - `imageToTensorData(img, { channels, width, height })`: NCHW floats in [0, 1].
 * - `tileImages(images, { columns, gap, background, labels })`, `drawText`, `textWidth`: a grid
 *   of tiles with labels in a built-in 5×7 bitmap font (no font files needed).
 */
import { dirname } from 'node:path';
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { ArgumentError, FormatError } from '../runtime/errors.js';
import { makeDirectory, readRegularFile, shorten, writeFileAtomic } from '../runtime/files.js';
import { raiseHint, resolveLimits, type Limits } from '../runtime/limits.js';
import { checkImage, colorbar, type ColormapName, type RgbaImage } from './colormaps.js';

export { makeDirectory };

export { imageToTensorData, type ImageToTensorOptions } from './input.js';

export type { RgbaImage } from './colormaps.js';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

export type ImageFormat = 'png' | 'jpeg';

/** 'png' or 'jpeg' from the first bytes of a file, or null for anything else. */
export function detectFormat(bytes: Uint8Array): ImageFormat | null {
  const starts = (magic: number[]) => bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
  if (starts(PNG_MAGIC)) return 'png';
  if (starts(JPEG_MAGIC)) return 'jpeg';
  return null;
}

function describeStart(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'the file is empty';
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it starts with bytes ${head}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface DecodeImageOptions {
  /** Limits for this call (default: the process-wide ones, see `setLimits`). */
  limits?: Partial<Limits>;
}

export interface ReadImageOptions extends DecodeImageOptions {}

const megapixels = (n: number) => (n >= 100_000 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`);

/** Refuses an image whose header declares more pixels than the limit. */
function checkPixels(name: string, format: string, width: number, height: number, limits: Readonly<Limits>): void {
  const pixels = width * height;
  if (pixels > limits.maxImagePixels) {
    throw new FormatError(
      `${name} is a ${width}×${height} ${format} image (${megapixels(pixels)}), more than the limit of ${megapixels(limits.maxImagePixels)} (${raiseHint('maxImagePixels')})`,
    );
  }
}

const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** Bits per pixel of a PNG colour type and bit depth (0 for an invalid combination). */
function pngBitsPerPixel(colorType: number, depth: number): number {
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  return channels ? channels * depth : 0;
}

/** Adam7: [x0, y0, dx, dy] of each pass. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Bytes the image data of a PNG inflates to: a filter byte and the packed pixels of every row (of every Adam7 pass). */
function pngInflatedSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7.reduce((sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)), 0);
}

/**
 * Checks a PNG before pngjs decodes it: the size in IHDR against the pixel limit, and for an
 * interlaced image (which pngjs inflates without a bound) that the IDAT data inflates to no more
 * than the header implies. Malformed chunk structure is left to pngjs to report.
 */
function checkPng(bytes: Uint8Array, name: string, limits: Readonly<Limits>): void {
  if (bytes.length < 33 || u32(bytes, 12) !== 0x49484452 /* IHDR */) return;
  const width = u32(bytes, 16);
  const height = u32(bytes, 20);
  checkPixels(name, 'PNG', width, height, limits);
  const depth = bytes[24]!;
  const colorType = bytes[25]!;
  const interlaced = bytes[28] === 1;
  const bpp = pngBitsPerPixel(colorType, depth);
  if (!interlaced || bpp === 0 || width === 0 || height === 0) return; // pngjs bounds the rest
  const expected = pngInflatedSize(width, height, bpp, true);
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = u32(bytes, at);
    const type = u32(bytes, at + 4);
    if (at + 12 + length > bytes.length) break;
    if (type === 0x49444154 /* IDAT */) idat.push(bytes.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  try {
    inflateSync(Buffer.concat(idat), { maxOutputLength: Math.max(expected, 1) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new FormatError(`${name}: its image data inflates to more than the ${expected} bytes a ${width}×${height} image needs (a decompression bomb?)`);
    }
    // Corrupt zlib data: pngjs reports it.
  }
}

const JPEG_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Checks the frame size of a JPEG (from its SOFn segment) against the pixel limit before decoding. */
function checkJpeg(bytes: Uint8Array, name: string, limits: Readonly<Limits>): void {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return; // not at a marker: let the decoder report it
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return; // scan data or end before a frame header
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    if (JPEG_SOF.has(marker) && at + 9 <= bytes.length) {
      const height = (bytes[at + 5]! << 8) | bytes[at + 6]!;
      const width = (bytes[at + 7]! << 8) | bytes[at + 8]!;
      checkPixels(name, 'JPEG', width, height, limits);
      return;
    }
    at += 2 + length;
  }
}

/**
 * Decodes PNG or JPEG bytes (told apart by their magic bytes) into 8-bit RGBA. Grey, palette and
 * 16-bit PNGs are converted to 8-bit RGBA; JPEGs get alpha 255. `name` is used in error messages.
 * An image larger than the `maxImagePixels` limit is refused from its header (a FormatError).
 */
export function decodeImage(bytes: Uint8Array, name = 'image data', options: DecodeImageOptions = {}): RgbaImage {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError(`decodeImage: expected bytes (Uint8Array), got ${typeof bytes}`);
  const limits = resolveLimits(options.limits, 'decodeImage');
  name = shorten(String(name));
  const format = detectFormat(bytes);
  if (format === null) {
    throw new ArgumentError(`${name} is not a PNG or JPEG image (${describeStart(bytes)})`);
  }
  if (format === 'png') checkPng(bytes, name, limits);
  else checkJpeg(bytes, name, limits);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded =
      format === 'png'
        ? pngjs.PNG.sync.read(buffer)
        : jpeg.decode(buffer, {
            useTArray: true,
            formatAsRGBA: true,
            tolerantDecoding: false,
            maxResolutionInMP: limits.maxImagePixels / 1e6,
            // The decoder's own buffers: a few bytes per pixel besides the RGBA output.
            maxMemoryUsageInMB: Math.ceil((limits.maxImagePixels * 16) / 2 ** 20) + 64,
          });
  } catch (err) {
    throw new ArgumentError(`${name} is a corrupt or truncated ${format.toUpperCase()} image (${shorten(errorMessage(err))})`);
  }
  const { width, height, data } = decoded;
  if (!(width > 0 && height > 0) || data.length !== width * height * 4) {
    throw new ArgumentError(`${name} is a corrupt or truncated ${format.toUpperCase()} image (decoded ${width}×${height} with ${data.length} bytes)`);
  }
  // A copy: decoders may return a view into a shared pool buffer.
  return { width, height, data: new Uint8ClampedArray(data) };
}

/**
 * Reads a PNG or JPEG file into 8-bit RGBA. Missing, unreadable, non-image and corrupt files each
 * get one clear error; only regular files are read (not a device or FIFO, even through a symlink),
 * and a file over the `maxImageBytes` limit is refused before it is read.
 */
export function readImage(path: string, options: ReadImageOptions = {}): RgbaImage {
  if (typeof path !== 'string' || path === '') throw new ArgumentError('readImage: path must be a non-empty string');
  const limits = resolveLimits(options.limits, 'readImage');
  const shown = shorten(path);
  let bytes: Uint8Array;
  try {
    bytes = readRegularFile(path, { maxBytes: limits.maxImageBytes, what: 'image', hint: raiseHint('maxImageBytes') });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ArgumentError(`${shown}: no such file`);
    if (code === 'EISDIR') throw new ArgumentError(`${shown} is a directory, not an image file`);
    if (err instanceof FormatError) throw err;
    throw new ArgumentError(`${shown}: cannot read the file (${errorMessage(err)})`);
  }
  return decodeImage(bytes, path, { limits });
}

/** Encodes an RGBA image as a PNG file's bytes (8-bit RGBA). */
export function encodePng(img: RgbaImage): Uint8Array {
  checkImage(img, 'encodePng');
  const png = new pngjs.PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const out = pngjs.PNG.sync.write(png, { colorType: 6 });
  return new Uint8Array(out);
}

/**
 * Writes an RGBA image as a PNG file, creating its directory. Atomic: the bytes go to a temporary
 * file created exclusively beside `path` (never through a link planted there), which is then
 * renamed to `path`, so an interrupted write never leaves a half-written PNG behind.
 */
export function writePng(path: string, img: RgbaImage): void {
  if (typeof path !== 'string' || path === '') throw new ArgumentError('writePng: path must be a non-empty string');
  const bytes = encodePng(img);
  try {
    makeDirectory(dirname(path));
    writeFileAtomic(path, bytes);
  } catch (err) {
    throw new ArgumentError(`writePng: cannot write ${shorten(path)} (${errorMessage(err)})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Text: a 5×7 bitmap font of our own, for ASCII 32 … 126, in 5×8 cells (row 7 holds descenders).
// Each glyph is 8 base-32 digits, one per row from the top; a digit's 5 bits are the row's
// pixels, the highest bit leftmost.
const FONT_TABLE =
  '00000000 44444040 aaa00000 aavavaa0 4fke5u40 op248j30 cik8lid0 44800000' +
  '24888420 84222480 04lel400 044v4400 00000c48 000v0000 00000cc0 01248g00' +
  'ehjlphe0 4c4444e0 eh1248v0 v2421he0 26aiv220 vgu11he0 68guhhe0 v1248880' +
  'ehhehhe0 ehhf12c0 0cc0cc00 0cc0c480 248g8420 00v0v000 84212480 eh124040' +
  'eh1dlle0 ehhvhhh0 uhhuhhu0 ehggghe0 sihhhis0 vgguggv0 vgguggg0 ehgnhhf0' +
  'hhhvhhh0 e44444e0 72222ic0 hikokih0 ggggggv0 hrllhhh0 hhpljhh0 ehhhhhe0' +
  'uhhuggg0 ehhhlid0 uhhukih0 fgge11u0 v4444440 hhhhhhe0 hhhhha40 hhhllla0' +
  'hha4ahh0 hha44440 v1248gv0 e88888e0 0g842100 e22222e0 4ah00000 0000000v' +
  '84200000 00e1fhf0 ggmphhu0 00egghe0 11djhhf0 00ehvge0 698s8880 00fhhf1e' +
  'ggmphhh0 40c444e0 206222ic ggikoki0 c44444e0 00qllhh0 00mphhh0 00ehhhe0' +
  '00uhhugg 00fhhf11 00mpggg0 00fge1u0 88s88960 00hhhjd0 00hhha40 00hhlla0' +
  '00ha4ah0 00hhhf1e 00v248v0 24484420 44444440 84424480 008l2000';

const GLYPH_W = 5;
const GLYPH_H = 8;
let glyphs: Uint8Array[] | null = null;

function glyph(ch: string): Uint8Array {
  glyphs ??= (FONT_TABLE.replace(/ /g, '').match(/.{8}/g) ?? []).map((g) => Uint8Array.from(g, (d) => parseInt(d, 32)));
  const code = ch.charCodeAt(0);
  return glyphs[code >= 32 && code <= 126 ? code - 32 : '?'.charCodeAt(0) - 32]!;
}

/** Width in pixels of `text` drawn at `scale` (glyphs 5 wide, 1 pixel apart, all ×scale). */
export function textWidth(text: string, scale = 2): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_W + 1) - 1) * scale;
}

/** Height in pixels of a line of text at `scale` (7 rows plus a descender row). */
export function textHeight(scale = 2): number {
  return GLYPH_H * scale;
}

export interface DrawTextOptions {
  /** Pixel size of one font dot; default 2. */
  scale?: number;
  /** RGBA; default opaque black. */
  color?: [number, number, number, number?];
}

/**
 * Draws `text` into `img` in place, top-left corner at (x, y), with the built-in 5×7 font.
 * Characters outside printable ASCII are drawn as '?'; pixels outside the image are skipped.
 */
export function drawText(img: RgbaImage, text: string, x: number, y: number, options: DrawTextOptions = {}): void {
  checkImage(img, 'drawText');
  const { scale = 2, color = [0, 0, 0, 255] } = options;
  if (!Number.isInteger(scale) || scale < 1) throw new ArgumentError(`drawText: scale must be a positive integer, got ${scale}`);
  const [r, g, b, a = 255] = color;
  x = Math.round(x);
  y = Math.round(y);
  for (let c = 0; c < text.length; c++) {
    const rows = glyph(text[c]!);
    const gx = x + c * (GLYPH_W + 1) * scale;
    for (let row = 0; row < GLYPH_H; row++) {
      for (let col = 0; col < GLYPH_W; col++) {
        if (!((rows[row]! >> (GLYPH_W - 1 - col)) & 1)) continue;
        for (let dy = 0; dy < scale; dy++) {
          const py = y + row * scale + dy;
          if (py < 0 || py >= img.height) continue;
          for (let dx = 0; dx < scale; dx++) {
            const px = gx + col * scale + dx;
            if (px < 0 || px >= img.width) continue;
            const o = 4 * (py * img.width + px);
            img.data[o] = r;
            img.data[o + 1] = g;
            img.data[o + 2] = b;
            img.data[o + 3] = a;
          }
        }
      }
    }
  }
}

export interface TileOptions {
  /** Tiles per row; default all in one row. */
  columns?: number;
  /** Pixels between tiles and around the grid; default 4. */
  gap?: number;
  /** RGBA background; default opaque white. */
  background?: [number, number, number, number?];
  /** One label per image, drawn centred under its tile. */
  labels?: string[];
  /**
   * Font scale of the labels; default 2 (letters 10×14 pixels). If a label is wider than a cell, all
   * labels shrink together (down to scale 1), and labels still too wide are cut short with '..'.
   */
  labelScale?: number;
  /** RGBA label colour; default black or white, whichever contrasts with the background. */
  labelColor?: [number, number, number, number?];
}

/**
 * Composes images into a grid, row by row, for an overview. Each cell is as large as the largest
 * image; an image sits centred in its cell, composited over the background. With `labels`, a
 * strip under each row of tiles holds the labels. Size: width = columns·cellW + (columns+1)·gap,
 * height = rows·(cellH + labelH) + (rows+1)·gap, where labelH = 11·labelScale with labels, else 0.
 */
export function tileImages(images: RgbaImage[], options: TileOptions = {}): RgbaImage {
  if (!Array.isArray(images) || images.length === 0) throw new ArgumentError('tileImages: need at least one image');
  images.forEach((img, i) => checkImage(img, 'tileImages', `image ${i}`));
  const { columns = images.length, gap = 4, background = [255, 255, 255, 255], labels, labelScale = 2 } = options;
  if (!Number.isInteger(columns) || columns < 1) throw new ArgumentError(`tileImages: columns must be a positive integer, got ${columns}`);
  if (!Number.isInteger(gap) || gap < 0) throw new ArgumentError(`tileImages: gap must be a non-negative integer, got ${gap}`);
  if (!Number.isInteger(labelScale) || labelScale < 1) {
    throw new ArgumentError(`tileImages: labelScale must be a positive integer, got ${labelScale}`);
  }
  if (!Array.isArray(background) || background.length < 3 || background.length > 4) {
    throw new ArgumentError('tileImages: background must be [r, g, b] or [r, g, b, a] with values in 0..255');
  }
  if (labels !== undefined && (!Array.isArray(labels) || labels.length !== images.length)) {
    throw new ArgumentError(`tileImages: got ${labels?.length} labels for ${images.length} images; give one label per image`);
  }
  const [br, bg, bb, ba = 255] = background;
  const luminance = 0.299 * br + 0.587 * bg + 0.114 * bb;
  const labelColor = options.labelColor ?? (luminance > 127 ? [0, 0, 0, 255] : [255, 255, 255, 255]);

  const cellW = Math.max(...images.map((im) => im.width));
  const cellH = Math.max(...images.map((im) => im.height));
  const labelH = labels ? 11 * labelScale : 0;
  const cols = Math.min(columns, images.length);
  const rows = Math.ceil(images.length / cols);
  const width = cols * cellW + (cols + 1) * gap;
  const height = rows * (cellH + labelH) + (rows + 1) * gap;
  const out: RgbaImage = { width, height, data: new Uint8ClampedArray(width * height * 4) };
  for (let p = 0; p < width * height; p++) out.data.set([br, bg, bb, ba], 4 * p);

  // One font scale for all labels: the largest, up to labelScale, at which every label fits.
  let fittedScale = labelScale;
  while (labels && fittedScale > 1 && labels.some((l) => textWidth(String(l), fittedScale) > cellW)) fittedScale--;

  images.forEach((img, i) => {
    const cx = gap + (i % cols) * (cellW + gap);
    const cy = gap + Math.floor(i / cols) * (cellH + labelH + gap);
    const ox = cx + Math.floor((cellW - img.width) / 2);
    const oy = cy + Math.floor((cellH - img.height) / 2);
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const s = 4 * (y * img.width + x);
        const d = 4 * ((oy + y) * width + ox + x);
        const a = img.data[s + 3]! / 255;
        const ad = out.data[d + 3]! / 255;
        const ao = a + ad * (1 - a);
        for (let k = 0; k < 3; k++) {
          out.data[d + k] = ao > 0 ? Math.round((a * img.data[s + k]! + ad * (1 - a) * out.data[d + k]!) / ao) : 0;
        }
        out.data[d + 3] = Math.round(ao * 255);
      }
    }
    if (labels) {
      let text = String(labels[i]);
      const scale = fittedScale;
      if (textWidth(text, scale) > cellW) {
        while (text.length > 0 && textWidth(`${text}..`, scale) > cellW) text = text.slice(0, -1);
        text = text.length > 0 ? `${text}..` : '';
      }
      const tx = cx + Math.floor((cellW - textWidth(text, scale)) / 2);
      const ty = cy + cellH + 2 * labelScale;
      drawText(out, text, tx, ty, { scale, color: labelColor });
    }
  });
  return out;
}

export interface ColorbarKeyOptions {
  colormap?: ColormapName;
  /** Length of the bar in pixels (default: the image's width less the margins). */
  width?: number;
  /** Margin left of the bar and below the labels, in pixels (default 6). */
  gap?: number;
  /** The words at the bar's two ends (default 'low', 'high'). */
  ends?: [string, string];
  /** RGBA of the strip added under the image (default white). */
  background?: [number, number, number, number?];
}

/**
 * `img` with a key to its colours added underneath: the colour map as a bar, from the map's lowest
 * displayed value on the left to its highest on the right, with the two ends named.
 */
export function addColorbarKey(img: RgbaImage, options: ColorbarKeyOptions = {}): RgbaImage {
  checkImage(img, 'addColorbarKey');
  const { colormap = 'viridis', gap = 6, ends = ['low', 'high'], background = [255, 255, 255, 255] } = options;
  const width = Math.min(options.width ?? img.width - 2 * gap, img.width - 2 * gap);
  if (!Number.isInteger(width) || width < 8) throw new ArgumentError(`addColorbarKey: the bar needs at least 8 pixels, got ${width}`);
  const barHeight = Math.max(6, Math.round(width / 24));
  const textY = img.height + barHeight + 2;
  const height = textY + textHeight(1) + gap;
  const out: RgbaImage = { width: img.width, height, data: new Uint8ClampedArray(img.width * height * 4) };
  const [r, g, b, a = 255] = background;
  for (let p = 0; p < img.width * height; p++) out.data.set([r, g, b, a], 4 * p);
  out.data.set(img.data);
  const bar = colorbar(width, barHeight, colormap);
  for (let y = 0; y < barHeight; y++) out.data.set(bar.data.subarray(4 * y * width, 4 * (y + 1) * width), 4 * ((img.height + y) * img.width + gap));
  const luminance = 0.299 * r + 0.587 * g + 0.114 * b;
  const color: [number, number, number, number] = luminance > 127 ? [0, 0, 0, 255] : [255, 255, 255, 255];
  drawText(out, ends[0], gap, textY, { scale: 1, color });
  drawText(out, ends[1], gap + width - textWidth(ends[1], 1), textY, { scale: 1, color });
  return out;
}

/** Draws a rectangle outline [x1, y1, x2, y2] (pixel edges) onto `img` in place. */
export function drawBox(
  img: RgbaImage,
  box: readonly number[],
  color: [number, number, number, number?] = [255, 64, 64, 255],
  thickness = 2,
): void {
  const [x1, y1, x2, y2] = box.map((v) => Math.round(v)) as [number, number, number, number];
  const put = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    const p = (y * img.width + x) * 4;
    img.data[p] = color[0];
    img.data[p + 1] = color[1];
    img.data[p + 2] = color[2];
    img.data[p + 3] = color[3] ?? 255;
  };
  for (let t = 0; t < thickness; t++) {
    for (let x = x1; x < x2; x++) {
      put(x, y1 + t);
      put(x, y2 - 1 - t);
    }
    for (let y = y1; y < y2; y++) {
      put(x1 + t, y);
      put(x2 - 1 - t, y);
    }
  }
}
