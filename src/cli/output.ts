/**
 * Where the commands write: checked before the long work, so that a mistyped or unwritable --out
 * fails at once, in one line, instead of after an epoch of training or a D-RISE run.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ArgumentError } from '../runtime/errors.js';
import { makeDirectory, probeWritable, shorten } from '../runtime/files.js';
import type { InitGpuOptions } from '../runtime/gpu.js';

/** Why a file system call failed, in words (Node's own message where there are none). */
export function fileProblem(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return e.message.includes(' is a file, not a directory') ? e.message : 'a part of the path is a file, not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Creates the output directory (and its parents) and checks that files can be written there, with
 * an exclusively created probe file (never through a link planted there). Returns its absolute
 * path. An empty name is refused: it would mean the current directory without saying so.
 */
export function outputDirectory(option: string, dir: string): string {
  if (dir === '') throw new ArgumentError(`${option} must name a directory; got an empty string`);
  const path = resolve(dir);
  try {
    makeDirectory(path);
    probeWritable(path);
  } catch (err) {
    throw new ArgumentError(`${option} ${shorten(dir)}: cannot write files there (${fileProblem(err)})`);
  }
  return path;
}

/**
 * `outputDirectory(option, dir)` when first called, then the same path: a command that fails
 * before it writes its first file leaves no empty directory behind. Check `dir` up front with
 * checkOutputDirectory.
 */
export function lazyOutputDirectory(option: string, dir: string): () => string {
  let path: string | undefined;
  return () => (path ??= outputDirectory(option, dir));
}

/**
 * Checks, creating nothing, that `outputDirectory(option, dir)` will be able to write there: the
 * directory, or the nearest of its parents that exists, must be a directory where a file can be
 * made. For commands that fail on a bad --out before they run a model, and leave nothing behind
 * when they fail for another reason later.
 */
export function checkOutputDirectory(option: string, dir: string): void {
  if (dir === '') throw new ArgumentError(`${option} must name a directory; got an empty string`);
  const path = resolve(dir);
  let existing = path;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    if (!statSync(existing).isDirectory()) {
      const message = existing === path ? `${path} is a file, not a directory` : 'not a directory';
      throw Object.assign(new Error(message), { code: 'ENOTDIR' });
    }
    probeWritable(existing);
  } catch (err) {
    throw new ArgumentError(`${option} ${shorten(dir)}: cannot write files there (${fileProblem(err)})`);
  }
}

/** Checks that a file can be written at `file`: its directory is created, and it is not a directory itself. Returns its absolute path. */
export function outputFile(option: string, file: string): string {
  if (file === '') throw new ArgumentError(`${option} must name a file; got an empty string`);
  const path = resolve(file);
  if (existsSync(path) && statSync(path).isDirectory()) throw new ArgumentError(`${option} ${shorten(file)} is a directory; name the file to write`);
  try {
    makeDirectory(dirname(path));
    probeWritable(dirname(path));
  } catch (err) {
    throw new ArgumentError(`${option} ${shorten(file)}: cannot write there (${fileProblem(err)})`);
  }
  return path;
}

/**
 * initGpu's options for a command: the memory budget from `--memory-budget <MiB>` (when given), and
 * the library's warnings (a batch size split to fit the budget) on stderr, each different one once
 * (a command that runs the same work on several methods or rows would repeat it).
 */
export function gpuOptions(memoryBudgetMiB?: number): InitGpuOptions {
  const said = new Set<string>();
  return {
    ...(memoryBudgetMiB !== undefined ? { memoryBudget: memoryBudgetMiB * 2 ** 20 } : {}),
    log: (message, level) => {
      if (level !== 'warning' || said.has(message)) return;
      said.add(message);
      process.stderr.write(`saliency: ${message}\n`);
    },
  };
}
