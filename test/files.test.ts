import { mkdtempSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/runtime/errors.js';
import { readRegularFile, resolveInside, writeFileAtomic } from '../src/runtime/files.js';

describe('files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'saliency-files-'));
  mkdirSync(join(dir, 'model'));
  writeFileSync(join(dir, 'model', 'a.bin'), new Uint8Array([1, 2, 3]));
  writeFileSync(join(dir, 'secret.txt'), 'secret');
  symlinkSync('/dev/zero', join(dir, 'model', 'zero.bin'));
  symlinkSync(join(dir, 'secret.txt'), join(dir, 'model', 'escape.bin'));

  it('reads a regular file and refuses a device behind a symlink', () => {
    expect(Array.from(readRegularFile(join(dir, 'model', 'a.bin'), { maxBytes: 10 }))).toEqual([1, 2, 3]);
    expect(() => readRegularFile(join(dir, 'model', 'zero.bin'), { maxBytes: 10 })).toThrow(/not a regular file \(a character device\)/);
    expect(() => readRegularFile(join(dir, 'model'), { maxBytes: 10 })).toThrow(/not a regular file \(a directory\)/);
    expect(() => readRegularFile(join(dir, 'nope'), { maxBytes: 10 })).toThrow(FormatError);
  });

  it('refuses a file over the limit before reading it', () => {
    expect(() => readRegularFile(join(dir, 'model', 'a.bin'), { maxBytes: 2, what: 'shard' })).toThrow(/shard .* is 3 bytes, more than the limit of 2/);
  });

  it('keeps names inside the folder', () => {
    const m = join(dir, 'model');
    expect(resolveInside(m, 'a.bin')).toBe(join(m, 'a.bin'));
    expect(() => resolveInside(m, '../secret.txt')).toThrow(/outside the model's folder/);
    expect(() => resolveInside(m, '/etc/passwd')).toThrow(/relative/);
    expect(() => resolveInside(m, 'escape.bin')).toThrow(/links to a file outside/);
    expect(() => resolveInside(m, '')).toThrow(FormatError);
    expect(() => resolveInside(m, '.')).toThrow(FormatError);
  });

  it('writes atomically and never follows a planted temporary link', () => {
    const out = join(dir, 'out.txt');
    writeFileAtomic(out, 'one');
    writeFileAtomic(out, 'two');
    expect(readFileSync(out, 'utf8')).toBe('two');
    expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});
