/**
 * `saliency batch-merge <dir>`: joins the results-<i>.jsonl of the N shards of a batch run into
 * results.jsonl (in input order), after checking that the shards ran on the same input with the same
 * settings, and that every input is there exactly once with its files. Nothing is written when a
 * check fails; the report says what is missing, twice, or out of place.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ArgumentError, FormatError } from '../../runtime/errors.js';
import { readRegularFile, writeFileAtomic, shorten } from '../../runtime/files.js';
import { methodEntry, readResults, type ResultRecord } from './results.js';
import { shardOf } from './inputs.js';

interface RunFile {
  version: number;
  inputCount: number;
  inputHash: string;
  shard: { index: number; count: number } | null;
  modelHash: string;
  methods: string[];
  settings: Record<string, string>;
  /** The metrics' settings (--metric), or null. */
  metrics?: Record<string, string> | null;
  ids: string[];
  indexes: number[];
}

export interface MergeReport {
  /** Shards found (1 for an unsharded run). */
  shards: number;
  inputs: number;
  ok: number;
  failed: number;
  /** Ids of inputs with no results line. */
  missing: string[];
  /** Ids with more than one line (within or across shards). */
  duplicates: string[];
  /** Everything else that is wrong, one sentence each. */
  problems: string[];
  /** The failed images and their errors. */
  failures: { id: string; error: string }[];
  /** The merged file, when it was written. */
  merged: string | null;
}

function readRun(file: string): RunFile {
  const text = Buffer.from(readRegularFile(file, { maxBytes: 2 * 1024 * 1024 * 1024, what: 'run file' })).toString('utf8');
  let v: Partial<RunFile>;
  try {
    v = JSON.parse(text) as Partial<RunFile>;
  } catch {
    throw new FormatError(`${file} is not a run file of 'saliency batch' (not JSON)`);
  }
  const ok =
    typeof v === 'object' && v !== null && typeof v.inputCount === 'number' && typeof v.inputHash === 'string' && Array.isArray(v.ids) && Array.isArray(v.indexes) &&
    v.ids.length === v.indexes.length && v.ids.every((id) => typeof id === 'string') && v.indexes.every((i) => Number.isSafeInteger(i)) &&
    (v.shard === null || (typeof v.shard === 'object' && Number.isSafeInteger(v.shard?.index) && Number.isSafeInteger(v.shard?.count)));
  if (!ok) throw new FormatError(`${file} is not a run file of 'saliency batch'`);
  return v as RunFile;
}

/** Checks (and, for shards, merges) the results in `dir`. */
export function mergeResults(dir: string): MergeReport {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new ArgumentError(`batch-merge: ${dir} is not a folder`);
  const names = readdirSync(root);
  const shardRuns = names.map((n) => /^run-(\d+)\.json$/.exec(n)).filter((m): m is RegExpExecArray => m !== null);
  const single = names.includes('run.json');
  if (!single && shardRuns.length === 0) throw new ArgumentError(`batch-merge: ${dir} holds no run of 'saliency batch' (no run.json or run-<i>.json)`);
  if (single && shardRuns.length > 0) {
    throw new ArgumentError(`batch-merge: ${dir} holds both a run over the whole input (run.json) and shards (run-<i>.json); give sharded runs their own --out folder`);
  }
  const report: MergeReport = { shards: 0, inputs: 0, ok: 0, failed: 0, missing: [], duplicates: [], problems: [], failures: [], merged: null };
  const runs = new Map<number, RunFile>();
  if (single) runs.set(0, readRun(join(root, 'run.json')));
  for (const m of shardRuns) runs.set(Number(m[1]), readRun(join(root, m[0])));

  const first = [...runs.values()][0]!;
  const count = single ? 1 : first.shard?.count ?? 0;
  report.shards = runs.size;
  report.inputs = first.inputCount;
  for (const [i, run] of runs) {
    const name = single ? 'run.json' : `run-${i}.json`;
    if (!single && (run.shard?.index !== i || run.shard.count !== count)) report.problems.push(`${name} is shard ${run.shard ? `${run.shard.index} of ${run.shard.count}` : '(none)'}, not ${i} of ${count}`);
    if (run.inputHash !== first.inputHash || run.inputCount !== first.inputCount) report.problems.push(`${name} ran on another input (${run.inputCount} images) than the first shard (${first.inputCount})`);
    if (run.modelHash !== first.modelHash || JSON.stringify(run.settings) !== JSON.stringify(first.settings)) report.problems.push(`${name} ran with other settings (model or methods) than the first shard`);
    else if (JSON.stringify(run.metrics ?? null) !== JSON.stringify(first.metrics ?? null)) report.problems.push(`${name} ran with other metrics (--metric and their options) than the first shard`);
  }
  for (let i = 0; i < count; i++) if (!runs.has(i)) report.problems.push(`shard ${i} of ${count} never ran (no run-${i}.json)`);

  // Every input, with the shard that must hold it.
  const expected = new Map<string, { shard: number; index: number }>();
  for (const [i, run] of runs) {
    run.ids.forEach((id, k) => {
      if (!single && shardOf(id, count) !== i) report.problems.push(`run-${i}.json lists '${shorten(id, 80)}', which belongs to shard ${shardOf(id, count)}`);
      else expected.set(id, { shard: i, index: run.indexes[k]! });
    });
  }
  if (runs.size === count && expected.size !== first.inputCount) report.problems.push(`the shards list ${expected.size} inputs; the input has ${first.inputCount}`);

  const found = new Map<string, { record: ResultRecord; line: string; index: number }>();
  const duplicates = new Set<string>();
  for (const i of runs.keys()) {
    const name = single ? 'results.jsonl' : `results-${i}.jsonl`;
    const file = join(root, name);
    if (!existsSync(file)) {
      report.problems.push(`${name} is missing`);
      continue;
    }
    const results = readResults(file);
    if (results.torn) report.problems.push(`${name} ends in a line cut short: shard ${i} did not finish; run it again with the same command`);
    for (const [id, record] of results.records) {
      const where = expected.get(id);
      if (!where) {
        report.problems.push(`${name} has a line for '${shorten(id, 80)}', which is not an input of this run`);
        continue;
      }
      if (where.shard !== i) report.problems.push(`${name} has a line for '${shorten(id, 80)}', an input of shard ${where.shard}`);
      if (found.has(id)) duplicates.add(id);
      found.set(id, { record, line: results.lines.get(id)!, index: where.index });
    }
    for (const id of results.duplicates) duplicates.add(id);
  }
  report.duplicates = [...duplicates];
  for (const id of expected.keys()) if (!found.has(id)) report.missing.push(id);
  for (const [id, { record }] of found) {
    if (record.status === 'ok') {
      report.ok++;
      for (const m of first.methods) {
        const entry = methodEntry(record, m);
        if (!entry) report.problems.push(`'${shorten(id, 80)}' has no ${m} entry`);
        else for (const f of entry.files) if (!existsSync(join(root, f))) report.problems.push(`'${shorten(id, 80)}': ${f} is missing`);
      }
    } else {
      report.failed++;
      report.failures.push({ id, error: record.error ?? 'unknown error' });
    }
  }
  const clean = report.missing.length === 0 && report.duplicates.length === 0 && report.problems.length === 0;
  if (clean && !single) {
    const lines = [...found.values()].sort((a, b) => a.index - b.index).map((f) => `${f.line}\n`);
    const out = join(root, 'results.jsonl');
    writeFileAtomic(out, lines.join(''));
    report.merged = out;
  } else if (clean) report.merged = join(root, 'results.jsonl');
  return report;
}

export async function mergeCommand(dir: string, o: { json?: boolean }): Promise<void> {
  const r = mergeResults(dir);
  if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    console.log(`${r.shards} shard${r.shards === 1 ? '' : 's'}, ${r.inputs} inputs: ${r.ok} explained, ${r.failed} failed, ${r.missing.length} missing, ${r.duplicates.length} twice`);
    for (const f of r.failures.slice(0, 20)) console.log(`  failed: ${f.id}: ${f.error}`);
    if (r.failures.length > 20) console.log(`  … and ${r.failures.length - 20} more failures`);
    if (r.merged) console.log(`→ ${r.merged}`);
  }
  const wrong = [
    ...r.problems,
    ...(r.missing.length ? [`${r.missing.length} input${r.missing.length > 1 ? 's have' : ' has'} no results line: ${r.missing.slice(0, 5).map((s) => `'${shorten(s, 60)}'`).join(', ')}${r.missing.length > 5 ? ', …' : ''}`] : []),
    ...(r.duplicates.length ? [`${r.duplicates.length} input${r.duplicates.length > 1 ? 's have' : ' has'} more than one line: ${r.duplicates.slice(0, 5).map((s) => `'${shorten(s, 60)}'`).join(', ')}`] : []),
  ];
  if (wrong.length) throw new MergeError(`batch-merge: ${dir} is not complete; nothing was merged:\n  ${wrong.slice(0, 20).join('\n  ')}${wrong.length > 20 ? `\n  … and ${wrong.length - 20} more` : ''}`);
}

/** The shards do not add up to the input. */
export class MergeError extends ArgumentError {}
