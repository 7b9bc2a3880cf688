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
 * - `makeDirectory(dir)`: creates a directory and its missing parents, and removes the ones it made
 *   when a deeper level fails.
 * - `probeWritable(dir)`: checks that files can be created in `dir`, with an exclusively created,
 *   randomly named file that is removed at once.
 */
import { closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, writeSync, fsyncSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FormatError } from './errors.js';
import { raiseHint, resolveLimits, type Limits } from './limits.js';

export interface ReadLimits {
  /** Refuse files larger than this many bytes (checked from the file's size before reading). */
  maxBytes: number;
  /** What the file is, for error messages (e.g. 'weights file'). */
  what?: string;
  /** How to raise the limit, added to the error of a file over it. */
  hint?: string;
}

/**
 * The errors of `readRegularFile` carry a `code`: the errno of a failed open ('ENOENT', 'EACCES', …),
 * 'EISDIR' for a directory, 'ENOTREG' for another special file, 'TOO_LARGE' for a file over the limit.
 */
export type FileErrorCode = string | undefined;

function withCode<E extends Error>(err: E, code: FileErrorCode): E & { code: FileErrorCode } {
  return Object.assign(err, { code });
}

/** Reads a whole regular file, refusing special files and files over `maxBytes` before allocating. */
export function readRegularFile(path: string, limits: ReadLimits): Uint8Array {
  const what = limits.what ?? 'file';
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw withCode(new FormatError(`${what} ${path}: ${describeFsError(err)}`), (err as NodeJS.ErrnoException).code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw withCode(new FormatError(`${what} ${path} is not a regular file (${fileKind(st)})`), st.isDirectory() ? 'EISDIR' : 'ENOTREG');
    if (st.size > limits.maxBytes) {
      throw withCode(new FormatError(`${what} ${path} is ${st.size} bytes, more than the limit of ${limits.maxBytes}${limits.hint ? ` (${limits.hint})` : ''}`), 'TOO_LARGE');
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
  const tmp = temporaryName(path);
  const fd = createExclusive(tmp);
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

/** A temporary name beside `path`: `<dir>/.<name>.<random>.partial`. */
function temporaryName(path: string): string {
  return join(dirname(path), `.${basename(path).slice(0, 100)}.${randomBytes(6).toString('hex')}.partial`);
}

/** Opens a new file for writing; fails if anything (a file, a planted symlink) is already there. */
function createExclusive(path: string): number {
  return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o644);
}

/**
 * Creates a directory and its missing parents, one level at a time: Node's own
 * `mkdirSync(dir, { recursive: true })` never returns where mkdir fails with ENOENT under a parent
 * that exists (anywhere under /proc, for one). When a level fails (a name too long, no permission),
 * the directories this call made are removed again, deepest first, and Node's error of the level
 * that failed is thrown; a path that names a file throws ENOTDIR.
 */
export function makeDirectory(dir: string): void {
  const path = resolve(dir);
  const missing: string[] = [];
  for (let p = path; !existsSync(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  const made: string[] = [];
  try {
    for (const p of missing) {
      try {
        mkdirSync(p);
        made.push(p);
      } catch (err) {
        // Made meanwhile by someone else: fine if it is a directory (checked below).
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (!statSync(path).isDirectory()) throw Object.assign(new Error(`${path} is a file, not a directory`), { code: 'ENOTDIR' });
  } catch (err) {
    for (const p of made.reverse()) {
      try {
        rmdirSync(p);
      } catch {
        break; // someone put something there meanwhile: leave it and its parents
      }
    }
    throw err;
  }
}

/**
 * Throws Node's error when no file can be created in `dir` (permission bits do not tell: root passes
 * them, and yet cannot write in /proc or on a read-only file system). The probe file has a random
 * name and is created exclusively, so a file or symlink planted in advance is never followed.
 */
export function probeWritable(dir: string): void {
  const probe = join(dir, `.saliency-${process.pid}-${randomBytes(6).toString('hex')}.partial`);
  closeSync(createExclusive(probe));
  rmSync(probe, { force: true });
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

/**
 * Reads a model or weights file (safetensors, model.json, a weight shard, .onnx): a regular file
 * only, refused before it is read when it is larger than the `maxModelBytes` limit.
 */
export function readModelFile(path: string, limits?: Partial<Limits>, what = 'model file'): Uint8Array {
  const { maxModelBytes } = resolveLimits(limits, 'readModelFile');
  return readRegularFile(path, { maxBytes: maxModelBytes, what, hint: raiseHint('maxModelBytes') });
}
