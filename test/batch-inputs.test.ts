/**
 * The parts of `saliency batch` that need no GPU: reading folders, globs and manifests (files from
 * strangers), the shard of an id, the output names of ids, --shard, and the results file's reader
 * (a torn last line, duplicates).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { listInputs, outputStem, shardOf } from '../src/cli/batch/inputs.js';
import { parseShard } from '../src/cli/batch/shard.js';
import { compactResults, formatRecord, readResults, type ResultRecord } from '../src/cli/batch/results.js';
import { ArgumentError, FormatError } from '../src/runtime/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'batch-inputs-'));

describe('batch inputs', () => {
  it('a folder gives its images, sorted, with ids relative to it; hidden names and other files are skipped', () => {
    const f = join(dir, 'folder');
    mkdirSync(join(f, 'b', 'c'), { recursive: true });
    mkdirSync(join(f, '.hidden'));
    for (const name of ['z.png', 'a.JPG', 'b/c/x.jpeg', 'b/y.png', '.dot.png', '.hidden/h.png', 'notes.txt']) writeFileSync(join(f, name), '');
    const list = listInputs(f);
    expect(list.kind).toBe('folder');
    expect(list.items.map((i) => i.id)).toEqual(['a.JPG', 'b/c/x.jpeg', 'b/y.png', 'z.png']);
    expect(list.items.map((i) => i.index)).toEqual([0, 1, 2, 3]);
    expect(list.items[1]!.file).toBe(resolve(f, 'b/c/x.jpeg'));
  });

  it('a glob gives ids relative to the folder before its first wildcard', () => {
    const list = listInputs(join(dir, 'folder', 'b', '**', '*.{png,jpeg}'));
    expect(list.kind).toBe('glob');
    expect(list.items.map((i) => i.id)).toEqual(['c/x.jpeg', 'y.png']);
    expect(() => listInputs(join(dir, 'folder', '*.gif'))).toThrow(/matches no .png, .jpg or .jpeg file/);
  });

  it('reads CSV and JSONL manifests: path, target, crop, id; extra columns are reported, never used as object keys', () => {
    writeFileSync(join(dir, 'm.csv'), 'path,target,crop,id,label\nimg/a.png,3,"1,2,3,4",first,cat\n/abs/b.png,top,,,dog\nc.png,Sneaker,,,\n');
    const csv = listInputs(join(dir, 'm.csv'));
    expect(csv.ignored).toEqual(['label']);
    expect(csv.items).toEqual([
      { index: 0, id: 'first', path: 'img/a.png', file: join(dir, 'img/a.png'), target: 3, crop: [1, 2, 3, 4] },
      { index: 1, id: '/abs/b.png', path: '/abs/b.png', file: '/abs/b.png', target: 'top' },
      { index: 2, id: 'c.png', path: 'c.png', file: join(dir, 'c.png'), target: 'Sneaker' },
    ]);
    writeFileSync(join(dir, 'm.jsonl'), '{"path":"a.png","crop":[0,0,5,5],"id":7}\n\n{"path":"b.png","__proto__":{"polluted":1},"constructor":"x"}\n');
    const jsonl = listInputs(join(dir, 'm.jsonl'));
    expect(jsonl.items.map((i) => [i.id, i.crop])).toEqual([['7', [0, 0, 5, 5]], ['b.png', undefined]]);
    expect(jsonl.ignored).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a bad manifest before any work, naming each bad line', () => {
    writeFileSync(join(dir, 'bad.csv'), 'path,crop,target\na.png,"1,2,3",\n,,\nb.png,,-1\nc.png,"0,0,0,5",\n');
    expect(() => listInputs(join(dir, 'bad.csv'))).toThrow(
      /has 4 bad rows:\n {2}line 2: 'crop' must be .*\n {2}line 3: 'path' must be a file name.*\n {2}line 4: 'target' must be a class index ≥ 0.*\n {2}line 5: 'crop'/,
    );
    writeFileSync(join(dir, 'dup.jsonl'), '{"path":"a.png"}\n{"path":"b.png","id":"a.png"}\n');
    expect(() => listInputs(join(dir, 'dup.jsonl'))).toThrow(/ids must be unique; 1 repeated: 'a.png' \(items 1 and 2\)/);
    writeFileSync(join(dir, 'nojson.jsonl'), '{"path":"a.png"}\n{oops\n[1]\n');
    expect(() => listInputs(join(dir, 'nojson.jsonl'))).toThrow(/line 2: not JSON.*\n {2}line 3: not a JSON object/);
    writeFileSync(join(dir, 'nopath.csv'), 'file,target\na.png,1\n');
    expect(() => listInputs(join(dir, 'nopath.csv'))).toThrow(/needs a header row with a 'path' column/);
    expect(() => listInputs(join(dir, 'missing.csv'))).toThrow(FormatError);
    expect(() => listInputs(join(dir, 'nowhere'))).toThrow(/no such folder, glob or manifest/);
  });

  it('the shard of an id depends on the id alone, and spreads ids evenly', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `img-${i}.png`);
    const counts = [0, 0, 0, 0];
    for (const id of ids) counts[shardOf(id, 4)]!++;
    for (const c of counts) expect(Math.abs(c - 750)).toBeLessThan(100);
    // Adding inputs moves no existing one.
    const before = ids.map((id) => shardOf(id, 4));
    expect([...ids, 'new.png'].slice(0, 3000).map((id) => shardOf(id, 4))).toEqual(before);
    expect(shardOf('anything', 1)).toBe(0);
  });

  it('output names stay inside the maps folder, and distinct ids never share one', () => {
    expect(outputStem('cats/001.png')).toBe('cats/001.png');
    const hostile = outputStem('../../etc/passwd');
    expect(hostile.split('/')).not.toContain('..');
    expect(hostile).toMatch(/~[0-9a-f]{8}$/);
    expect(outputStem('/abs/x.png').startsWith('/')).toBe(false);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (a, b) => {
        const [sa, sb] = [outputStem(a), outputStem(b)];
        for (const s of [sa, sb]) {
          for (const part of s.split('/')) expect(part === '' || part === '.' || part === '..' || part.startsWith('.')).toBe(false);
          expect(s).toMatch(/^[A-Za-z0-9._+\-/~]+$/);
        }
        if (a !== b) expect(sa).not.toBe(sb);
      }),
      { numRuns: 2000 },
    );
  });

  it('parses --shard i/N, auto (JOB_COMPLETION_INDEX, SALIENCY_SHARD_COUNT) and auto/N', () => {
    expect(parseShard(undefined, {})).toBeNull();
    expect(parseShard('2/5', {})).toEqual({ index: 2, count: 5 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '3', SALIENCY_SHARD_COUNT: '4' })).toEqual({ index: 3, count: 4 });
    expect(parseShard('auto/8', { JOB_COMPLETION_INDEX: '7' })).toEqual({ index: 7, count: 8 });
    expect(() => parseShard('5/5', {})).toThrow(/shard 5 does not exist: shards are numbered 0..4/);
    expect(() => parseShard('1/0', {})).toThrow(/between 1 and/);
    expect(() => parseShard('auto', {})).toThrow(/JOB_COMPLETION_INDEX.*not set here/);
    expect(() => parseShard('auto', { JOB_COMPLETION_INDEX: '0' })).toThrow(/SALIENCY_SHARD_COUNT/);
    expect(() => parseShard('auto/4', { JOB_COMPLETION_INDEX: '0x1' })).toThrow(/JOB_COMPLETION_INDEX must be a whole number/);
    expect(() => parseShard('1-3', {})).toThrow(ArgumentError);
  });

  it('reads a results file: a torn last line is dropped, the last of repeated lines wins, and compacting rewrites it', () => {
    const rec = (id: string, status: 'ok' | 'failed' = 'ok'): ResultRecord => ({ id, path: `${id}.png`, status, settings: 's' });
    const file = join(dir, 'results.jsonl');
    const whole = formatRecord(rec('a')) + formatRecord(rec('b', 'failed')) + formatRecord(rec('b'));
    const torn = formatRecord(rec('c')).slice(0, 20);
    writeFileSync(file, whole + torn);
    const r = readResults(file);
    expect(r.torn).toBe(true);
    expect([...r.records.keys()]).toEqual(['a', 'b']);
    expect(r.records.get('b')!.status).toBe('ok');
    expect(r.duplicates).toEqual(['b']);
    expect(compactResults(file, r, (id) => id !== 'a')).toBe(1);
    const again = readResults(file);
    expect(again.torn).toBe(false);
    expect([...again.records.keys()]).toEqual(['b']);
    expect(again.lineCount).toBe(1);
    writeFileSync(file, `${formatRecord(rec('a'))}{"id":"x"}\n`);
    expect(() => readResults(file)).toThrow(/line 2 is not a results record/);
    expect(readResults(join(dir, 'none.jsonl')).records.size).toBe(0);
  });
});
