/**
 * The results file of a batch run (`results.jsonl`, or `results-<i>.jsonl` for shard i): one JSON
 * line per image, appended only after the image's files exist. What makes a run resumable:
 *
 * - reading it back tolerates the one thing a killed run can leave, a last line without its '\n'
 *   (it is dropped: that image is done again);
 * - at the start of a run the file is rewritten (atomically) without the lines of the images that
 *   this run will do again, so that no image ever has two lines;
 * - a lock file keeps two runs on one machine from appending to the same file.
 */
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { ArgumentError, FormatError } from '../../runtime/errors.js';
import { readRegularFile, writeFileAtomic } from '../../runtime/files.js';
import { fileProblem } from '../output.js';

/** A class and its probability. */
export interface ClassScore {
  class: number;
  name?: string;
  probability: number;
}

/** One method's outputs for one image. */
export interface MethodEntry {
  /** Files written, relative to the output folder. */
  files: string[];
  /** This image's share of the method's time on its batch, in milliseconds. */
  ms: number;
  /** Hash of everything that decides the files' contents (see `methodSettings`). */
  settings: string;
  /** With --metric: the hash of each metric's settings (and of the map's), for the values in the record's `metrics`. */
  metrics?: Record<string, string>;
}

/**
 * One image's metrics of one method's map (`--metric`, docs/batch.md): the library's values for
 * that image alone. A value that is not finite is written as null (JSON has no Infinity).
 */
export interface MapMetrics {
  /** Deletion AUC (lower is better). */
  deletion?: number;
  /** Insertion AUC (higher is better). */
  insertion?: number;
  /** ROAD: the means over the percentages of MoRF and LeRF, and (LeRF − MoRF) / 2. */
  road?: { morf: number; lerf: number; combined: number };
  /** Y = f_c(x), O = f_c(x ⊙ E), and the drop 100 · max(0, Y − O) / Y in percent. */
  averageDrop?: { drop: number; y: number; o: number };
  /** Max-sensitivity; null where it is infinite (a zero map that perturbations make non-zero). */
  maxSensitivity?: number | null;
  /** Spearman |E| and SSIM to the trained model's map (cascading: all layers re-initialised; independent: the mean over the layers). */
  randomisation?: { spearmanAbs: number; ssim: number };
  /** Whether the map's maximum lies in a box (grown by --tolerance), and where it is ([x, y], map pixels). */
  pointingGame?: { hit: boolean; point: [number, number] };
}

/** One line of results.jsonl. */
export interface ResultRecord {
  id: string;
  path: string;
  status: 'ok' | 'failed';
  /** Hash of the image's own settings (model, path, crop, target, top-k). */
  settings: string;
  /** The class explained. */
  target?: number;
  predicted?: ClassScore;
  top?: ClassScore[];
  methods?: Record<string, MethodEntry>;
  /** With --metric: each method's metrics of this image's map, e.g. { gradCam: { deletion: 0.12, insertion: 0.8 } }. */
  metrics?: Record<string, MapMetrics>;
  /** Images in the GPU batch this image was part of. */
  batch?: number;
  /** Why the image failed. */
  error?: string;
}

/** A results file as read: its complete records by id (the last line wins), and what was wrong with it. */
export interface ResultsFile {
  records: Map<string, ResultRecord>;
  /** The raw line of each record, to keep lines byte for byte when the file is rewritten. */
  lines: Map<string, string>;
  /** Lines in the file, complete ones only. */
  lineCount: number;
  /** A last line without '\n' (a run killed while appending) was dropped. */
  torn: boolean;
  /** Ids that had more than one line (only the last is kept). */
  duplicates: string[];
}

/** Results files larger than this are refused (a million images take about 500 MB). */
const MAX_RESULTS_BYTES = 4 * 1024 * 1024 * 1024 - 1;

/** Reads a results file; a missing file is an empty one. Lines that are not records are an error naming the line. */
export function readResults(file: string): ResultsFile {
  const out: ResultsFile = { records: new Map(), lines: new Map(), lineCount: 0, torn: false, duplicates: [] };
  if (!existsSync(file)) return out;
  const text = Buffer.from(readRegularFile(file, { maxBytes: MAX_RESULTS_BYTES, what: 'results file' })).toString('utf8');
  const lines = text.split('\n');
  const last = lines.pop()!; // '' when the file ends with '\n'
  if (last !== '') out.torn = true;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const record = parseRecord(line);
    if (!record) throw new FormatError(`${file} line ${i + 1} is not a results record; fix or remove that line and run again`);
    if (out.records.has(record.id)) {
      out.duplicates.push(record.id);
      out.records.delete(record.id); // re-insert: keep the order of the last lines
      out.lines.delete(record.id);
    }
    out.records.set(record.id, record);
    out.lines.set(record.id, line);
    out.lineCount++;
  });
  return out;
}

function parseRecord(line: string): ResultRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as Partial<ResultRecord>;
  if (typeof r.id !== 'string' || typeof r.path !== 'string' || (r.status !== 'ok' && r.status !== 'failed') || typeof r.settings !== 'string') return null;
  return r as ResultRecord;
}

/** A method's entry in a record, if it is one (the record came from a file). */
export function methodEntry(record: ResultRecord, method: string): MethodEntry | null {
  const m = record.methods;
  if (typeof m !== 'object' || m === null || !Object.hasOwn(m, method)) return null;
  const e = m[method] as Partial<MethodEntry>;
  if (typeof e !== 'object' || e === null || typeof e.settings !== 'string' || !Array.isArray(e.files) || !e.files.every((f) => typeof f === 'string')) return null;
  return e as MethodEntry;
}

/** The metric hashes of a method entry from a file (only string values, under names the caller asks for). */
export function metricKeysOf(entry: MethodEntry | null, names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const m = entry?.metrics as unknown;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return out;
  for (const name of names) {
    const v = Object.hasOwn(m, name) ? (m as Record<string, unknown>)[name] : undefined;
    if (typeof v === 'string') out.set(name, v);
  }
  return out;
}

/** How many metric hashes a method entry from a file holds (any names). */
export function metricKeyCount(entry: MethodEntry | null): number {
  const m = entry?.metrics as unknown;
  return typeof m === 'object' && m !== null && !Array.isArray(m) ? Object.keys(m).length : 0;
}

/** The metric values of a method in a record from a file, if there are. */
export function metricValuesOf(record: ResultRecord | undefined, method: string): Record<string, unknown> | null {
  const m = record?.metrics as unknown;
  if (typeof m !== 'object' || m === null || !Object.hasOwn(m, method)) return null;
  const v = (m as Record<string, unknown>)[method];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** One results line: the record's fields in a fixed order, then '\n'. */
export function formatRecord(r: ResultRecord): string {
  const ordered: Record<string, unknown> = { id: r.id, path: r.path, status: r.status, settings: r.settings };
  if (r.target !== undefined) ordered.target = r.target;
  if (r.predicted !== undefined) ordered.predicted = r.predicted;
  if (r.top !== undefined) ordered.top = r.top;
  if (r.methods !== undefined) ordered.methods = r.methods;
  if (r.metrics !== undefined) ordered.metrics = r.metrics;
  if (r.batch !== undefined) ordered.batch = r.batch;
  if (r.error !== undefined) ordered.error = r.error;
  return `${JSON.stringify(ordered)}\n`;
}

/**
 * Rewrites the results file with only the lines of `keep` ids (in their order in the file), if that
 * changes it: atomically, so that a kill leaves either the old file or the new one.
 */
export function compactResults(file: string, results: ResultsFile, keep: (id: string) => boolean): number {
  let dropped = 0;
  const kept: string[] = [];
  for (const [id, line] of results.lines) {
    if (keep(id)) kept.push(line);
    else dropped++;
  }
  if (dropped > 0 || results.torn || results.duplicates.length > 0 || kept.length !== results.lineCount) {
    writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
  }
  return dropped;
}

/** Appends whole lines to a results file: one write per line, in O_APPEND mode. */
export class ResultsWriter {
  private fd: number;
  constructor(readonly file: string) {
    try {
      this.fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0), 0o644);
    } catch (err) {
      throw new ArgumentError(`cannot write ${file} (${fileProblem(err)})`);
    }
  }
  append(record: ResultRecord): void {
    const bytes = Buffer.from(formatRecord(record));
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
  }
  close(): void {
    if (this.fd < 0) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * A lock file beside the results file, so that a second run on this machine does not append to the
 * same file. A lock left by a run that died (its process is gone, or it was this very process id
 * in an earlier container) is taken over; a lock from another machine is taken over too, because
 * on shared storage only the Job controller decides which pod runs a shard (see indexed-job.yaml).
 */
export class RunLock {
  private held = false;
  constructor(readonly file: string) {}

  acquire(): void {
    const me = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o644);
        writeSync(fd, me);
        closeSync(fd);
        this.held = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ArgumentError(`cannot create the lock ${this.file} (${fileProblem(err)})`);
      }
      const owner = this.owner();
      if (owner && owner.host === hostname() && owner.pid !== process.pid && alive(owner.pid)) {
        throw new ArgumentError(
          `another 'saliency batch' (process ${owner.pid}, started ${owner.started}) is writing ${this.file.replace(/\.lock$/, '')}; ` +
            `wait for it, or delete ${this.file} if no such run is going on`,
        );
      }
      rmSync(this.file, { force: true }); // stale: its run is gone
    }
    throw new ArgumentError(`cannot take the lock ${this.file}: another run keeps creating it`);
  }

  private owner(): { pid: number; host: string; started: string } | null {
    try {
      const v = JSON.parse(readFileSync(this.file, 'utf8')) as { pid?: unknown; host?: unknown; started?: unknown };
      if (typeof v.pid === 'number' && typeof v.host === 'string') return { pid: v.pid, host: v.host, started: String(v.started) };
    } catch {
      // unreadable or half-written: stale
    }
    return null;
  }

  release(): void {
    if (this.held) rmSync(this.file, { force: true });
    this.held = false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
