/**
 * Reading an imported model and the files it names (weight shards, external data), safely:
 *
 * - a path (Node): the model file and every file it names must be regular files, no larger than
 *   the limit, and inside the model's own folder (runtime/files.ts: `readRegularFile`,
 *   `resolveInside`);
 * - a URL: the files it names must have the model's origin and lie under the model's folder
 *   (its URL path up to the last '/');
 * - bytes in memory: the files it names come from a caller's function, or not at all.
 *
 * Browser-safe: Node's file system is reached through a dynamic import hidden from bundlers.
 */
import { ArgumentError, FormatError, SaliencyError } from '../../runtime/errors.js';
import { readResponse } from '../../runtime/fetch.js';

export const isNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node;

type FilesModule = typeof import('../../runtime/files.js');

/** A module loaded only in Node: a variable specifier keeps bundlers from following it. */
async function nodeOnly<T>(name: string): Promise<T> {
  return (await import(/* @vite-ignore */ name)) as T;
}

/** runtime/files.ts (regular files only, paths kept inside a folder). */
const nodeFiles = () => nodeOnly<FilesModule>('../../runtime/files.js');

/** The bytes of one file the model names, read by the caller. */
export type SiblingReader = (name: string) => Promise<ArrayBuffer | Uint8Array>;

/** Where a model came from, and how to read the files it names. */
export interface ModelSource {
  /** The model file's bytes. */
  bytes: Uint8Array;
  /** The path or URL for messages ('<memory>' for bytes). */
  where: string;
  /** The file name without its extension, when there is one. */
  name?: string;
  /**
   * Reads a file the model names (relative to the model's folder), refusing names that leave it,
   * files that are not regular files and files over `maxBytes`. Undefined when the model came as
   * bytes without a reader.
   */
  sibling?: (name: string, what: string, maxBytes: number) => Promise<Uint8Array>;
}

const toBytes = (b: ArrayBuffer | Uint8Array): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(b));

/** The file name of a path or URL path, without the query and without `extension`. */
export function baseName(text: string, extension: RegExp): string | undefined {
  const base = text.replace(/[?#].*$/, '');
  return base.slice(Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\')) + 1).replace(extension, '') || undefined;
}

function isUrlText(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}

/** Fetches a URL's bytes, refusing a declared length over `maxBytes` before reading the body. */
export async function fetchBytes(url: URL, what: string, maxBytes: number): Promise<Uint8Array> {
  if (url.protocol === 'file:' && isNode()) {
    const { fileURLToPath } = await nodeOnly<typeof import('node:url')>('node:url');
    return (await nodeFiles()).readRegularFile(fileURLToPath(url), { maxBytes, what });
  }
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new FormatError(`cannot fetch ${what} ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new FormatError(`cannot fetch ${what} ${url}: HTTP ${res.status}${res.status === 404 ? ' (not found)' : ''}`);
  // The declared length first, then a body without one read in chunks and abandoned past the limit.
  return readResponse(res, `${what} ${url}`, { maxModelBytes: maxBytes });
}

/**
 * The URL of `name` relative to the model at `base`, refused unless it has the model's origin and
 * lies under the model's folder.
 */
export function siblingUrl(base: URL, name: string, what: string): URL {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) throw new FormatError(`${what} name ${JSON.stringify(String(name).slice(0, 200))} is not a file name`);
  let url: URL;
  try {
    url = new URL(name, base);
  } catch {
    throw new FormatError(`${what} '${name.slice(0, 200)}' is not a valid relative URL`);
  }
  const folder = base.href.replace(/[?#].*$/, '').replace(/[^/]*$/, '');
  if (url.origin !== base.origin || !url.href.startsWith(folder) || /(^|\/)\.\.(\/|$)/.test(decodeURIComponent(url.pathname.slice(new URL(folder).pathname.length)))) {
    throw new FormatError(`${what} '${name.slice(0, 200)}' lies outside the model's folder ${folder}`);
  }
  return url;
}

/**
 * Opens a model given as a path (Node), a URL (fetched; a relative URL resolves against the page)
 * or bytes. `extension` is removed from the file name for the model's default name.
 */
export async function openModelSource(
  source: string | URL | ArrayBuffer | Uint8Array,
  options: { what: string; maxBytes: number; extension: RegExp; readSibling?: SiblingReader },
): Promise<ModelSource> {
  const { what, maxBytes } = options;
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = toBytes(source);
    if (bytes.byteLength > maxBytes) throw new FormatError(`the model is ${bytes.byteLength} bytes, more than the limit of ${maxBytes}`);
    const reader = options.readSibling;
    return {
      bytes,
      where: '<memory>',
      sibling: reader
        ? async (name, kind, max) => {
            let b: Uint8Array;
            try {
              b = toBytes(await reader(name));
            } catch (e) {
              if (e instanceof SaliencyError) throw e;
              throw new FormatError(`cannot read ${kind} '${name.slice(0, 200)}': ${(e as Error).message}`);
            }
            if (!(b instanceof Uint8Array)) throw new FormatError(`the reader of ${kind} '${name.slice(0, 200)}' returned no bytes`);
            if (b.byteLength > max) throw new FormatError(`${kind} '${name.slice(0, 200)}' is ${b.byteLength} bytes, more than the limit of ${max}`);
            return b;
          }
        : undefined,
    };
  }
  if (typeof source !== 'string' && !(source instanceof URL)) {
    throw new ArgumentError(`${what}: the model must be a path, a URL, or its bytes (Uint8Array or ArrayBuffer)`);
  }
  const text = source.toString();
  const name = baseName(text, options.extension);
  if (!(source instanceof URL) && !isUrlText(text) && isNode()) {
    const files = await nodeFiles();
    const { dirname } = await nodeOnly<typeof import('node:path')>('node:path');
    const dir = dirname(text);
    return {
      bytes: files.readRegularFile(text, { maxBytes, what: 'model file' }),
      where: text,
      name,
      sibling: async (file, kind, max) => files.readRegularFile(files.resolveInside(dir, file, kind), { maxBytes: max, what: kind }),
    };
  }
  let url: URL;
  try {
    url = source instanceof URL ? source : new URL(text, (globalThis as { location?: { href: string } }).location?.href);
  } catch {
    throw new ArgumentError(`${what}: '${text.slice(0, 200)}' is neither a file path nor a URL`);
  }
  return {
    bytes: await fetchBytes(url, 'model file', maxBytes),
    where: text,
    name,
    sibling: async (file, kind, max) => fetchBytes(siblingUrl(url, file, kind), kind, max),
  };
}
