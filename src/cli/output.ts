/**
 * Where the commands write: checked before the long work, so that a mistyped or unwritable --out
 * fails at once, in one line, instead of after an epoch of training or a D-RISE run.
 */
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ArgumentError } from '../runtime/errors.js';
import { makeDirectory } from '../saliency/image.js';

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
 * Writes and removes an empty file: the permission bits do not tell (root passes them, and yet
 * cannot write in /proc or on a read-only file system).
 */
function probe(file: string): void {
  writeFileSync(file, '');
  rmSync(file, { force: true });
}

/** Creates the output directory (and its parents) and checks that files can be written there. Returns its absolute path. */
export function outputDirectory(option: string, dir: string): string {
  const path = resolve(dir);
  try {
    makeDirectory(path);
    probe(join(path, `.saliency-${process.pid}.partial`));
  } catch (err) {
    throw new ArgumentError(`${option} ${dir}: cannot write files there (${fileProblem(err)})`);
  }
  return path;
}

/** Checks that a file can be written at `file`: its directory is created, and it is not a directory itself. Returns its absolute path. */
export function outputFile(option: string, file: string): string {
  const path = resolve(file);
  if (existsSync(path) && statSync(path).isDirectory()) throw new ArgumentError(`${option} ${file} is a directory; name the file to write`);
  try {
    makeDirectory(dirname(path));
    probe(`${path}.partial`);
  } catch (err) {
    throw new ArgumentError(`${option} ${file}: cannot write there (${fileProblem(err)})`);
  }
  return path;
}
