/**
 * What `saliency batch` explains: the images of a folder, of a glob, or of a manifest (CSV or JSON
 * lines: `path` and, optionally, `target`, `crop`, `id` and `box`), each with a unique id; the shard an id
 * belongs to; and the file names of an id's outputs.
 *
 * Manifests are files from strangers: they are read under a size limit, their keys never become
 * keys of plain objects, and every bad row is reported (with its line) before any work starts.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { ArgumentError } from '../../runtime/errors.js';
import { readRegularFile, shorten } from '../../runtime/files.js';
import type { Box } from '../../saliency/display.js';
import { decimal } from '../parse.js';

/** A region x, y, width, height in whole pixels of the original image. */
export type Crop = [number, number, number, number];

/** One image to explain. */
export interface InputItem {
  /** Position in the whole input (before sharding). */
  index: number;
  /** Unique name of the image: its path relative to the folder or glob base, or the manifest's id. */
  id: string;
  /** The path as given (relative paths are relative to the working directory), for the results. */
  path: string;
  /** The file to read. */
  file: string;
  /** The class to explain: an index, a class name, or 'top'; undefined: the command's --target. */
  target?: number | string;
  crop?: Crop;
  /** The object's boxes for the pointing game, [x1, y1, x2, y2] in pixels (edges) of the original image. */
  boxes?: Box[];
}

/** Image files a folder or glob yields (a manifest may name any file). */
const IMAGE_EXTENSIONS = /\.(png|jpe?g)$/i;
/** Manifests larger than this are refused before they are read. */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
const MAX_ID_LENGTH = 1000;
const MANIFEST_KEYS = ['path', 'target', 'crop', 'id', 'box'];
/** Boxes one manifest row may give. */
const MAX_BOXES = 100;

/** How the --input text was read, for messages and the run file. */
export type InputKind = 'folder' | 'glob' | 'csv' | 'jsonl';

export interface InputList {
  kind: InputKind;
  items: InputItem[];
  /** Manifest columns or keys that were ignored. */
  ignored: string[];
}

/**
 * The images named by --input: a folder (every .png/.jpg/.jpeg below it, hidden names skipped), a
 * glob (quoted, so that the shell leaves it alone), or a manifest (.csv, or .jsonl/.ndjson). Ids
 * are unique (a repeated id is an error); items are in a stable order (sorted paths, or the
 * manifest's order).
 */
export function listInputs(input: string): InputList {
  if (typeof input !== 'string' || input === '') throw new ArgumentError('--input: name a folder, a glob, or a manifest (.csv or .jsonl)');
  let list: InputList;
  if (/\.csv$/i.test(input)) list = { kind: 'csv', ...readManifest(input, 'csv') };
  else if (/\.(jsonl|ndjson)$/i.test(input)) list = { kind: 'jsonl', ...readManifest(input, 'jsonl') };
  else if (isDynamicPattern(input.split(sep).join('/'))) list = { kind: 'glob', items: listGlob(input), ignored: [] };
  else list = { kind: 'folder', items: listFolder(input), ignored: [] };
  checkUniqueIds(list.items, input);
  return list;
}

function listFolder(dir: string): InputItem[] {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new ArgumentError(`--input ${dir}: no such folder, glob or manifest`);
  }
  if (!st.isDirectory()) throw new ArgumentError(`--input ${dir} is a file but not a manifest; a manifest ends in .csv or .jsonl, and a folder of images is named by its folder`);
  const root = resolve(dir);
  const rel: string[] = [];
  // Depth-first, without following links to folders (no cycles); links to files are kept.
  const walk = (sub: string) => {
    let entries;
    try {
      entries = readdirSync(join(root, sub), { withFileTypes: true });
    } catch (err) {
      throw new ArgumentError(`--input: cannot list ${join(dir, sub)} (${(err as Error).message})`);
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const name = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) walk(name);
      else if (IMAGE_EXTENSIONS.test(e.name) && (e.isFile() || e.isSymbolicLink())) rel.push(name);
    }
  };
  walk('');
  rel.sort(compareStrings);
  return rel.map((id, index) => ({ index, id, path: join(dir, ...id.split('/')), file: join(root, ...id.split('/')) }));
}

function listGlob(pattern: string): InputItem[] {
  const posix = pattern.split(sep).join('/');
  // The folder before the first segment with a wildcard: ids are paths relative to it.
  const segments = posix.split('/');
  const fixed: string[] = [];
  for (const s of segments.slice(0, -1)) {
    if (isDynamicPattern(s)) break;
    fixed.push(s);
  }
  const base = fixed.length === 0 ? '.' : fixed.join('/') || '/';
  const files = globSync(posix, { onlyFiles: true, dot: false, absolute: true, followSymbolicLinks: false });
  const baseAbs = resolve(base);
  const rel = files.map((f) => relative(baseAbs, f).split(sep).join('/')).filter((r) => IMAGE_EXTENSIONS.test(r));
  rel.sort(compareStrings);
  if (rel.length === 0) throw new ArgumentError(`--input ${pattern}: the glob matches no .png, .jpg or .jpeg file`);
  return rel.map((id, index) => ({ index, id, path: base === '.' ? id : `${base.replace(/\/$/, '')}/${id}`, file: join(baseAbs, ...id.split('/')) }));
}

/** Plain code-unit order: the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Row {
  line: number;
  fields: Map<string, unknown>;
}

function readManifest(file: string, kind: 'csv' | 'jsonl'): { items: InputItem[]; ignored: string[] } {
  const bytes = readRegularFile(file, { maxBytes: MAX_MANIFEST_BYTES, what: 'manifest' });
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/^\uFEFF/, '');
  const rows = kind === 'csv' ? csvRows(text, file) : jsonlRows(text, file);
  const ignored = new Set<string>();
  for (const r of rows) for (const k of r.fields.keys()) if (!MANIFEST_KEYS.includes(k)) ignored.add(k);
  const problems: string[] = [];
  const items: InputItem[] = [];
  const base = dirname(resolve(file));
  for (const row of rows) {
    try {
      items.push(manifestItem(row, items.length, base));
    } catch (e) {
      if (!(e instanceof ArgumentError)) throw e;
      problems.push(`line ${row.line}: ${e.message}`);
    }
  }
  if (problems.length) {
    const more = problems.length > 10 ? `\n  … and ${problems.length - 10} more` : '';
    throw new ArgumentError(`manifest ${file} has ${problems.length} bad row${problems.length > 1 ? 's' : ''}:\n  ${problems.slice(0, 10).join('\n  ')}${more}`);
  }
  if (items.length === 0) throw new ArgumentError(`manifest ${file} lists no image`);
  return { items, ignored: [...ignored].sort(compareStrings) };
}

function csvRows(text: string, file: string): Row[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, { skip_empty_lines: true, trim: true, info: true }) as unknown as typeof records;
  } catch (e) {
    throw new ArgumentError(`manifest ${file} is not valid CSV (${(e as Error).message})`);
  }
  const header = records[0]?.record;
  if (!header || !header.includes('path')) throw new ArgumentError(`manifest ${file} needs a header row with a 'path' column (and optionally target, crop, id, box)`);
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) throw new ArgumentError(`manifest ${file}: the column '${shorten(dup, 60)}' appears twice in the header`);
  return records.slice(1).map(({ record, info }) => {
    const fields = new Map<string, unknown>();
    header.forEach((h, j) => {
      const v = record[j] ?? '';
      if (v !== '') fields.set(h, v);
    });
    return { line: info.lines, fields };
  });
}

function jsonlRows(text: string, file: string): Row[] {
  const rows: Row[] = [];
  const lines = text.split('\n');
  const bad: string[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      bad.push(`line ${i + 1}: not JSON (${(e as Error).message})`);
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      bad.push(`line ${i + 1}: not a JSON object`);
      return;
    }
    rows.push({ line: i + 1, fields: new Map(Object.entries(v)) });
  });
  if (bad.length) throw new ArgumentError(`manifest ${file}:\n  ${bad.slice(0, 10).join('\n  ')}${bad.length > 10 ? `\n  … and ${bad.length - 10} more` : ''}`);
  return rows;
}

function manifestItem(row: Row, index: number, base: string): InputItem {
  const path = row.fields.get('path');
  if (typeof path !== 'string' || path.trim() === '' || path.includes('\0')) throw new ArgumentError(`'path' must be a file name, got ${describe(path)}`);
  const rawId = row.fields.get('id');
  let id: string;
  if (rawId === undefined || rawId === null || rawId === '') id = path;
  else if (typeof rawId === 'string' || (typeof rawId === 'number' && Number.isSafeInteger(rawId))) id = String(rawId);
  else throw new ArgumentError(`'id' must be a string, got ${describe(rawId)}`);
  checkId(id);
  const item: InputItem = { index, id, path, file: isAbsolute(path) ? path : resolve(base, path) };
  const target = row.fields.get('target');
  if (target !== undefined && target !== null && target !== '') item.target = parseTarget(target);
  const crop = row.fields.get('crop');
  if (crop !== undefined && crop !== null && crop !== '') item.crop = parseCropValue(crop);
  const box = row.fields.get('box');
  if (box !== undefined && box !== null && box !== '') item.boxes = parseBoxValue(box);
  return item;
}

function checkId(id: string): void {
  if (id.length > MAX_ID_LENGTH) throw new ArgumentError(`'id' is ${id.length} characters long; the limit is ${MAX_ID_LENGTH}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new ArgumentError(`'id' ${JSON.stringify(shorten(id, 60))} holds control characters`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  return shorten(JSON.stringify(v) ?? String(v), 60);
}

/** A target from the command line or a manifest: a class index, 'top', or a class name. */
export function parseTarget(v: unknown): number | string {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`'target' must be a class index ≥ 0, 'top' or a class name, got ${v}`);
    return v;
  }
  if (typeof v !== 'string' || v.trim() === '') throw new ArgumentError(`'target' must be a class index, 'top' or a class name, got ${describe(v)}`);
  const t = v.trim();
  if (/^[+-]?\d/.test(t)) {
    const n = decimal(t);
    if (!Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`'target' must be a class index ≥ 0, 'top' or a class name, got '${shorten(t, 60)}'`);
    return n;
  }
  return t;
}

/** A crop as 'x,y,w,h' or [x, y, w, h]: whole pixels, width and height > 0. */
export function parseCropValue(v: unknown): Crop {
  const parts = typeof v === 'string' ? v.split(',').map(decimal) : Array.isArray(v) ? v.map((n) => (typeof n === 'number' ? n : NaN)) : [];
  if (parts.length !== 4 || parts.some((n) => !Number.isSafeInteger(n) || n < 0) || parts[2] === 0 || parts[3] === 0) {
    throw new ArgumentError(`'crop' must be x,y,width,height in whole pixels (width and height > 0), got ${describe(v)}`);
  }
  return parts as Crop;
}

/**
 * The object's boxes as 'x1,y1,x2,y2' (several separated by ';'), [x1, y1, x2, y2] or a list of
 * those: finite pixel edges with x2 > x1 and y2 > y1.
 */
export function parseBoxValue(v: unknown): Box[] {
  const list: unknown[] = typeof v === 'string' ? v.split(';').map((b) => b.split(',').map(decimal)) : Array.isArray(v) && Array.isArray(v[0]) ? v : [v];
  const bad = () => new ArgumentError(`'box' must be x1,y1,x2,y2 in pixels of the image, with x2 > x1 and y2 > y1 (several separated by ';'; in JSON also [x1, y1, x2, y2] or a list of them), got ${describe(v)}`);
  if (list.length === 0 || list.length > MAX_BOXES) throw new ArgumentError(`'box' gives ${list.length} boxes; give 1 to ${MAX_BOXES}`);
  return list.map((b) => {
    if (!Array.isArray(b) || b.length !== 4 || !b.every((n) => typeof n === 'number' && Number.isFinite(n))) throw bad();
    const [x1, y1, x2, y2] = b as number[];
    if (!(x2! > x1! && y2! > y1!)) throw bad();
    return [x1, y1, x2, y2] as Box;
  });
}

function checkUniqueIds(items: InputItem[], input: string): void {
  const seen = new Map<string, number>();
  const dups: string[] = [];
  for (const it of items) {
    const first = seen.get(it.id);
    if (first !== undefined) dups.push(`'${shorten(it.id, 80)}' (items ${first + 1} and ${it.index + 1})`);
    else seen.set(it.id, it.index);
  }
  if (dups.length) {
    throw new ArgumentError(`--input ${input}: ids must be unique; ${dups.length} repeated: ${dups.slice(0, 5).join(', ')}${dups.length > 5 ? ', …' : ''} (give the manifest an 'id' column)`);
  }
}

/** A hex SHA-256 of a string. */
export function sha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The shard (0..count-1) an id belongs to: its SHA-256 read as a number, modulo count. It depends
 * on the id alone, so an id stays in its shard when the input grows or is reordered.
 */
export function shardOf(id: string, count: number): number {
  return Number(BigInt(`0x${sha256(id).slice(0, 16)}`) % BigInt(count));
}

/**
 * The output name stem of an id, relative to the maps folder: the id's '/'-separated parts, each
 * kept to letters, digits and `._+-` (others become '_', and a part may not be empty, '.', '..' or
 * start with '.'). An id that had to change gets `~` and 8 hex digits of its hash, so distinct ids
 * never share a name (an id that needs no change holds no '~').
 */
export function outputStem(id: string): string {
  let changed = false;
  const parts = id.split('/').map((p) => {
    let s = p.replace(/[^A-Za-z0-9._+-]/g, '_');
    if (s === '' || s.startsWith('.')) s = `_${s}`;
    if (s.length > 120) s = s.slice(0, 120);
    if (s !== p) changed = true;
    return s;
  });
  if (changed) parts[parts.length - 1] += `~${sha256(id).slice(0, 8)}`;
  return parts.join('/');
}
