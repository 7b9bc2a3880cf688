/**
 * Node-only file helpers for files from strangers and for the files we write. Not exported from the
 * browser entry point (it imports node:fs).
 *
 * - `readRegularFile(path, { maxBytes })`: reads a regular file only (no device, FIFO or
 *   directory, even through a symlink), refusing it before allocating when it is larger than
 *   `maxBytes`.
 * - `resolveInside(dir, name)`: the path of `name` inside `dir`, or a FormatError when it leaves it
 *   (`..`, an absolute path, or a symlink that points outside).
 * - `writeFileAtomic(path, data)`: writes to a temporary name created exclusively (it fails rather
 *   than follow a link planted there), then renames it over `path`, so a reader never sees a
 *   half-written file.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, renameSync, rmSync, writeSync, fsyncSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FormatError } from './errors.js';

export interface ReadLimits {
  /** Refuse files larger than this many bytes (checked from the file's size before reading). */
  maxBytes: number;
  /** What the file is, for error messages (e.g. 'weights file'). */
  what?: string;
}

/** Reads a whole regular file, refusing special files and files over `maxBytes` before allocating. */
export function readRegularFile(path: string, limits: ReadLimits): Uint8Array {
  const what = limits.what ?? 'file';
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new FormatError(`${what} ${path}: ${describeFsError(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FormatError(`${what} ${path} is not a regular file (${fileKind(st)})`);
    if (st.size > limits.maxBytes) {
      throw new FormatError(`${what} ${path} is ${st.size} bytes, more than the limit of ${limits.maxBytes}`);
    }
    const out = new Uint8Array(st.size);
    let off = 0;
    while (off < out.length) {
      const n = readSync(fd, out, off, out.length - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off !== out.length) throw new FormatError(`${what} ${path} changed while it was read (${off} of ${out.length} bytes)`);
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * The absolute path of `name` (a relative path from a model file, e.g. a weight shard) inside the
 * folder `dir`. Refuses absolute names, names that climb out with `..`, and names whose real path
 * (symlinks followed) lies outside the folder's real path.
 */
export function resolveInside(dir: string, name: string, what = 'file'): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw new FormatError(`${what} name ${JSON.stringify(shorten(String(name)))} is not a file name`);
  }
  if (isAbsolute(name) || /^[a-zA-Z]+:/.test(name)) {
    throw new FormatError(`${what} ${shorten(name)} must be a path relative to the model's folder`);
  }
  const root = resolve(dir);
  const path = resolve(root, name);
  if (!isWithin(root, path)) throw new FormatError(`${what} ${shorten(name)} lies outside the model's folder`);
  let realRoot: string;
  let realPath: string;
  try {
    realRoot = realpathSync(root);
    realPath = realpathSync(path);
  } catch {
    return path; // it does not exist (yet): the read reports that
  }
  if (!isWithin(realRoot, realPath)) throw new FormatError(`${what} ${shorten(name)} links to a file outside the model's folder`);
  return path;
}

function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Writes `data` to `path` atomically: to `<dir>/.<name>.<random>.partial` created with O_EXCL (so
 * an existing file or planted symlink there makes it fail instead of being followed), then renamed
 * over `path`. On failure the temporary file is removed and `path` is untouched.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o644);
  try {
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function fileKind(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a plain file';
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EISDIR') return 'it is a directory';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}

/** A string from a file or a user, cut for an error message. */
export function shorten(s: string, max = 200): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}
