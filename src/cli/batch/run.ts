/**
 * `saliency batch`: explain every image of a folder, glob or manifest with one or more methods,
 * writing each raw map as .npy (or .safetensors), optionally a PNG overlay, and one line per image
 * in results.jsonl. Resumable (a run killed at any moment and started again finishes the job, with
 * nothing missing, truncated or twice) and shardable (`--shard i/N`, `--shard auto` in a
 * Kubernetes Indexed Job). See docs/batch.md.
 *
 * How the work flows: worker threads decode the images of the next batches while the main thread
 * runs the current batch on the GPU; the maps go back to the workers to be written (each file to an
 * exclusive temporary name, then renamed), and only when all of an image's files exist is its line
 * appended to the results file.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { noGrad } from '../../autodiff/tape.js';
import { BUNDLED_MODELS, bundledWeightsUrl } from '../../nets/zoo.js';
import { ArgumentError, GpuError, SaliencyError } from '../../runtime/errors.js';
import { readRegularFile, writeFileAtomic } from '../../runtime/files.js';
import { initGpu, type Gpu } from '../../runtime/gpu.js';
import { BatchSizer, formatBytes } from '../../runtime/memory.js';
import { decodeNpy } from '../../runtime/npy.js';
import { parseSafetensors } from '../../nets/safetensors.js';
import { tensor, type Tensor } from '../../runtime/tensor.js';
import type { Box } from '../../saliency/display.js';
import { defaultCamLayer } from '../../saliency/core.js';
import { CLASSIFIER_METHOD_NAMES, methodByName, runMethod, type ClassifierMethod, type ClassifierMethodName, type ClassifierSettings } from '../../saliency/methods.js';
import { sliceImages } from '../../saliency/metrics/common.js';
import { batchesItself, smallestSettings } from '../../saliency/metrics/methods.js';
import { METRIC_NAMES, checkStep, type MetricFlags, type MetricName } from '../metric-options.js';
import { gpuOptions, outputDirectory } from '../output.js';
import { loadModelArgument, type LoadedModel } from '../train.js';
import { listInputs, outputStem, sha256, shardOf, parseTarget, compareStrings, type InputItem } from './inputs.js';
import { WorkerPool, type OutputFile, type TaskResult } from './pool.js';
import { formatMeans, inputBoxes, metricKeys, metricMeans, metricSettings, parseMetricPlan, scoreMaps, type MetricMean, type MetricPlan, type MetricProgress, type ScoreItem } from './metrics.js';
import {
  RunLock,
  ResultsWriter,
  compactResults,
  methodEntry,
  metricKeyCount,
  metricKeysOf,
  metricValuesOf,
  readResults,
  type ClassScore,
  type MapMetrics,
  type MethodEntry,
  type ResultRecord,
} from './results.js';
import { parseShard, type Shard } from './shard.js';

export interface BatchOptions extends MetricFlags {
  model: string;
  input: string;
  method: string;
  out: string;
  /** Default target of every image: a class index, a class name, or 'top'. */
  target: string;
  layer?: string;
  format: string;
  png?: boolean;
  size: number;
  /** Images per GPU batch, or 'auto': as many as fit the memory budget. */
  batchSize: number | 'auto';
  /** GPU memory budget in MiB (default: initGpu's). */
  memoryBudget?: number;
  topK: number;
  shard?: string;
  workers?: number;
  samples: number;
  noiseLevel: number;
  seed: number;
  /** Image files larger than this many MiB are refused before they are read. */
  maxFileSize: number;
  /** --metric: metrics of each map, into its results line (the metrics' options come from MetricFlags). */
  metric?: string;
  json?: boolean;
}

/** What `batch --json` prints, and what `runBatch` returns. */
export interface BatchSummary {
  /** Images explained by this run. */
  done: number;
  /** Images whose results were already there (same id and settings). */
  skipped: number;
  /** Images that failed in this run (each has a line with its error). */
  failed: number;
  total: number;
  shard: Shard | null;
  batchSize: number;
  workers: number;
  methods: string[];
  results: string;
  seconds: number;
  /** Images explained or failed per second of this run (skipped ones not counted). */
  imagesPerSecond: number;
  /** Summed time of the workers decoding, and how long the GPU loop waited for them. */
  decodeSeconds: number;
  decodeWaitSeconds: number;
  /** Wall time of the GPU work: forward passes, methods and reading maps back. */
  gpuSeconds: number;
  /** Wall time of the metrics (--metric), on the GPU and off it. */
  metricSeconds: number;
  /** With --metric: the metrics, and their means per method over the images of this run's results file. */
  metrics: { names: MetricName[]; means: Record<string, Partial<Record<MetricName, MetricMean>>> } | null;
  /** Summed time of the workers writing files, and how long the loop waited for them. */
  writeSeconds: number;
  writeWaitSeconds: number;
  /**
   * CPU time of the whole process (all threads) over the run. On a CPU adapter (lavapipe) it is the
   * GPU work's real cost, which wall time on a busy machine hides.
   */
  cpuSeconds: number;
  /**
   * GPU tensors and pool buffers in use after the model was loaded, and at the end; the memory
   * budget, the most the buffer pool held over the whole run (model included), and the memory of
   * one image that the batch size was chosen from (0 when nothing was to be done), in bytes.
   */
  memory: { tensorsStart: number; tensorsEnd: number; buffersStart: number; buffersEnd: number; budgetBytes: number; peakBytes: number; bytesPerImage: number };
}

const FORMATS = ['npy', 'safetensors'] as const;
type Format = (typeof FORMATS)[number];

/** Format version of results lines and settings hashes: a change makes every image be done again. */
const RESULTS_VERSION = 1;

type MethodName = ClassifierMethodName;

/** The methods of --method (the registry's classifier methods, or all of them). */
function parseMethods(method: string): ClassifierMethod[] {
  if (method === 'all') return CLASSIFIER_METHOD_NAMES.map((m) => methodByName(m));
  const list = [...new Set(method.split(',').map((m) => m.trim()).filter(Boolean))];
  if (list.length === 0) throw new ArgumentError(`--method: name at least one of ${CLASSIFIER_METHOD_NAMES.join(', ')}`);
  return list.map((name) => {
    if (!(CLASSIFIER_METHOD_NAMES as readonly string[]).includes(name)) {
      if (name === 'drise') throw new ArgumentError("--method drise explains object detectors: use 'saliency drise'");
      throw new ArgumentError(`unknown method '${name}'; methods: ${CLASSIFIER_METHOD_NAMES.join(', ')}, or all`);
    }
    return methodByName(name as MethodName);
  });
}

/** The settings every method reads from the command line (each reads those its registry entry lists). */
function methodSettingsOf(o: BatchOptions): Omit<ClassifierSettings, 'target'> {
  return { layer: o.layer, samples: o.samples, noiseLevel: o.noiseLevel, seed: o.seed };
}

/** The raw map of every image of `x` for its class in `targets`, through the method registry. */
function computeMap(method: ClassifierMethod, model: LoadedModel, x: Tensor, targets: number[], o: BatchOptions, extra: Partial<ClassifierSettings> = {}): Promise<Tensor> {
  return runMethod(method.name, model, x, { target: targets, ...methodSettingsOf(o), ...extra, trace: false });
}

/**
 * The settings a method reads (its registry entry's `options`), with the values this run gives them:
 * part of the method's settings hash, so that changing one redoes that method only.
 */
function methodOptions(method: ClassifierMethod, model: LoadedModel, o: BatchOptions): Record<string, unknown> {
  const values: Record<string, unknown> = {
    layer: o.layer ?? (method.options.includes('layer') ? defaultCamLayer(method.name, model) : undefined),
    upsample: 'bilinear',
    samples: o.samples,
    noiseLevel: o.noiseLevel,
    seed: o.seed,
    batchSize: null, // SmoothGrad's own default
  };
  return Object.fromEntries(method.options.map((k) => [k, values[k]]));
}

/** Upper bound of the automatic batch size: larger batches gain little and make progress coarse. */
const AUTO_BATCH_MAX = 64;

/**
 * The images per GPU batch (the one place that chooses it): the memory budget's choice
 * (src/runtime/memory.ts) from the memory of one image, measured on a blank image through what a
 * batch does (the forward pass, then each method, each map read back). SmoothGrad, which runs one
 * image per call and batches its noisy samples itself in what the budget leaves, is measured on one
 * sample (`smallestSettings`), so that the batch leaves room for at least that. 'auto' takes as
 * many images as fit, at most AUTO_BATCH_MAX; a number runs as asked, or, when it cannot fit, as
 * the largest that does, with a warning.
 *
 * It runs right after the model is loaded, before any other GPU work, so every run of the same
 * command (model, methods, their settings, budget and device) measures the same bytes in the same
 * state and cuts the same batches: it depends on nothing timed, nor on memory left by earlier
 * images, and a resumed run recomputes exactly the same maps.
 */
async function chooseBatchSize(
  gpu: Gpu,
  model: LoadedModel,
  methods: readonly ClassifierMethod[],
  o: BatchOptions,
  total: number,
): Promise<{ size: number; bytesPerImage: number; mapShapes: Map<MethodName, number[]> }> {
  const mapShapes = new Map<MethodName, number[]>();
  if (total === 0) return { size: 1, bytesPerImage: 0, mapShapes };
  const sizer = new BatchSizer(gpu, { label: 'batch', unit: 'image', batchSize: o.batchSize, maxBatch: AUTO_BATCH_MAX });
  await sizer.measure(async () => {
    const x = tensor(gpu, new Float32Array(model.inputShape.reduce((a, b) => a * b, 1)), [1, ...model.inputShape]);
    try {
      const out = await noGrad(gpu, () => model.forward(x, { logits: true }));
      await out.read().finally(() => out.dispose());
      for (const m of methods) {
        const map = await computeMap(m, model, x, [0], o, smallestSettings(m));
        mapShapes.set(m.name, map.shape.slice(1));
        await map.read().finally(() => map.dispose());
      }
    } finally {
      x.dispose();
    }
  });
  const cost = sizer.measured!;
  return { size: sizer.next(total), bytesPerImage: cost.bytes / cost.items, mapShapes };
}

/** A hash of the model's files: a retrained model makes every image be done again. */
function modelFingerprint(name: string): string {
  if (BUNDLED_MODELS[name]) return sha256(`bundled:${name}:${sha256(readFileSync(fileURLToPath(bundledWeightsUrl(name))))}`);
  const parts = [`file:${sha256(readFileSync(name))}`];
  if (name.endsWith('.json')) {
    // A TF.js model's weight shards sit beside model.json: their names, sizes and times count.
    const dir = dirname(name);
    for (const f of readdirSync(dir).sort(compareStrings)) {
      const st = statSync(join(dir, f));
      if (st.isFile() && f !== basename(name)) parts.push(`${f}:${st.size}:${st.mtimeMs}`);
    }
  }
  return sha256(parts.join('\n'));
}

function softmax(v: Float32Array): number[] {
  let m = -Infinity;
  for (const z of v) m = Math.max(m, z);
  const e = Array.from(v, (z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((z) => z / s);
}

const round = (v: number, digits: number) => Number(v.toPrecision(digits));

/** Everything the run knows about one image of its shard. */
interface Job {
  item: InputItem;
  /** The class to explain: an index, or 'top'. */
  target: number | 'top';
  /** Hash of the image's settings. */
  imageKey: string;
  /** The methods still to do, and the entries of those already done (kept from the results file). */
  todo: MethodName[];
  kept: Map<MethodName, MethodEntry>;
  stem: string;
  /**
   * With --metric, per method: the settings hash each metric's value must have, the values kept
   * from the results file, and the metrics still to compute.
   */
  metrics: Map<MethodName, { keys: Map<MetricName, string>; kept: MapMetrics; todo: MetricName[] }>;
  /** Whether the image's line must be (re)written: a map or a metric to do, or metrics to drop. */
  pending: boolean;
}

/** The files a method writes for an image, relative to the output folder. */
function methodFiles(stem: string, method: MethodName, format: Format, png: boolean): string[] {
  const base = `maps/${stem}.${method}`;
  return png ? [`${base}.${format}`, `${base}.png`] : [`${base}.${format}`];
}

/** Runs `saliency batch`. Human output goes to stdout, or to stderr with --json (stdout then holds the summary). */
export async function batchCommand(o: BatchOptions): Promise<void> {
  const summary = await runBatch(o);
  if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

export async function runBatch(o: BatchOptions): Promise<BatchSummary> {
  const say = (line: string) => (o.json ? process.stderr : process.stdout).write(`${line}\n`);
  const entries = parseMethods(o.method);
  if (!(FORMATS as readonly string[]).includes(o.format)) throw new ArgumentError(`--format must be ${FORMATS.join(' or ')}, got '${o.format}'`);
  const format = o.format as Format;
  const shard = parseShard(o.shard, process.env);
  const defaultTarget = parseTarget(o.target);
  const list = listInputs(o.input);
  const outDir = outputDirectory('--out', o.out);
  if (list.ignored.length) say(`manifest: ignoring the column${list.ignored.length > 1 ? 's' : ''} ${list.ignored.join(', ')}`);
  const items = shard ? list.items.filter((it) => shardOf(it.id, shard.count) === shard.index) : list.items;
  const plan = parseMetricPlan(o.metric, o, items);
  const suffix = shard ? `-${shard.index}` : '';
  const resultsFile = join(outDir, `results${suffix}.jsonl`);
  const runFile = join(outDir, `run${suffix}.json`);
  const workers = o.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));

  const gpu = await initGpu(gpuOptions(o.memoryBudget));
  const lock = new RunLock(`${resultsFile}.lock`);
  let pool: WorkerPool | null = null;
  try {
    const model = await loadModelArgument(gpu, o.model);
    if (model.outputShape.length !== 1) {
      throw new ArgumentError(`'${o.model}' is not a classifier (its output per image is [${model.outputShape.join(', ')}]); batch explains classifiers`);
    }
    const [channels, height, width] = model.inputShape as [number, number, number];
    if (channels !== 1 && channels !== 3) throw new ArgumentError(`model '${model.name}' takes ${channels} input channels; images give 1 or 3`);
    // What the model cannot do (CAM's head) and --layer are checked before any image, as explain does.
    for (const m of [...entries]) {
      const reason = m.unsupported(model);
      if (reason === null) continue;
      if (o.method !== 'all') throw new ArgumentError(reason);
      say(`${m.name}: skipped (${reason})`);
      entries.splice(entries.indexOf(m), 1);
    }
    for (const m of entries) m.check(model, { layer: o.layer });
    if (o.layer !== undefined && !entries.some((m) => m.options.includes('layer'))) model.layer(o.layer);
    const methods = entries.map((m) => m.name);
    if (plan) checkStep(plan.step, height, width);
    const classCount = model.outputShape[0]!;
    const classNames = model.classNames ?? [];
    const byName = new Map(classNames.map((n, i) => [n, i] as const));
    const resolveTarget = (t: number | string): number | 'top' => {
      if (t === 'top') return 'top';
      const c = typeof t === 'number' ? t : byName.get(t);
      if (c === undefined) throw new ArgumentError(`unknown class '${t}'${classNames.length ? `; classes: ${classNames.join(', ')}` : ' (the model has no class names; give an index)'}`);
      if (c >= classCount) throw new ArgumentError(`class ${c} is out of range; the model has ${classCount} classes (0..${classCount - 1})`);
      return c;
    };
    const fallback = resolveTarget(defaultTarget);
    const badTargets: string[] = [];
    const targets = items.map((it) => {
      try {
        return it.target === undefined ? fallback : resolveTarget(it.target);
      } catch (e) {
        badTargets.push(`'${it.id}': ${(e as Error).message}`);
        return fallback;
      }
    });
    if (badTargets.length) throw new ArgumentError(`--input: ${badTargets.length} bad target${badTargets.length > 1 ? 's' : ''}: ${badTargets.slice(0, 5).join('; ')}${badTargets.length > 5 ? '; …' : ''}`);

    // What decides an image's line and each method's files (the resume rule): see docs/batch.md.
    const model_ = modelFingerprint(o.model);
    // A method that batches its own work runs one image per call (explainGroup): said in its hash, so
    // that maps made before, whose noise depended on the image's place in its batch, are redone.
    const methodSettings = new Map(
      entries.map((m) => [m.name, JSON.stringify({ method: m.name, options: methodOptions(m, model, o), format, png: o.png ? o.size : false, ...(batchesItself(m) ? { calls: 'one image each' } : {}) })]),
    );
    // Each metric's settings hash adds its settings to its map's hash (see metrics.ts).
    const metricSettings_ = plan ? metricSettings(plan, width) : null;
    lock.acquire();
    const previous = readResults(resultsFile);
    const jobs: Job[] = items.map((item, i) => {
      const target = targets[i]!;
      const imageKey = sha256(JSON.stringify({ v: RESULTS_VERSION, model: model_, path: item.path, crop: item.crop ?? null, target, topK: o.topK })).slice(0, 16);
      const stem = outputStem(item.id);
      const kept = new Map<MethodName, MethodEntry>();
      const todo: MethodName[] = [];
      const metrics: Job['metrics'] = new Map();
      let pending = false;
      const rec = previous.records.get(item.id);
      for (const m of methods) {
        const entry = rec && rec.settings === imageKey ? methodEntry(rec, m) : null;
        const key = sha256(`${imageKey}\n${methodSettings.get(m)}`).slice(0, 16);
        const mapKept = rec?.status === 'ok' && entry !== null && entry.settings === key && entry.files.every((f) => existsSync(join(outDir, f)));
        if (mapKept) kept.set(m, entry);
        else todo.push(m);
        // A metric is kept when its value is there with the settings hash it needs now; a line with
        // metrics this run does not ask for is written again without them.
        const keys = plan ? metricKeys(plan, metricSettings_!, key, item) : new Map<MetricName, string>();
        const had = mapKept ? metricKeysOf(entry, METRIC_NAMES) : new Map<string, string>();
        const values = mapKept ? metricValuesOf(rec, m) : null;
        const keptValues: MapMetrics = {};
        const metricTodo: MetricName[] = [];
        for (const [name, k] of keys) {
          if (had.get(name) === k && values && Object.hasOwn(values, name)) Object.assign(keptValues, { [name]: values[name] });
          else metricTodo.push(name);
        }
        if (keys.size) metrics.set(m, { keys, kept: keptValues, todo: metricTodo });
        if (!mapKept || metricTodo.length > 0 || metricKeyCount(entry) !== keys.size || had.size !== keys.size) pending = true;
      }
      return { item, target, imageKey, todo, kept, stem, metrics, pending };
    });
    const methodKey = (job: Job, m: MethodName) => sha256(`${job.imageKey}\n${methodSettings.get(m)}`).slice(0, 16);
    const doneIds = new Set(jobs.filter((j) => !j.pending).map((j) => j.item.id));
    const dropped = compactResults(resultsFile, previous, (id) => doneIds.has(id));
    const stale = [...previous.records.keys()].filter((id) => !doneIds.has(id) && !jobs.some((j) => j.item.id === id)).length;
    if (stale > 0) say(`${basename(resultsFile)}: dropped the lines of ${stale} image${stale > 1 ? 's' : ''} not in this ${shard ? 'shard of the ' : ''}input`);
    if (previous.torn) say(`${basename(resultsFile)}: its last line was cut short by an interrupted run; that image is done again`);
    void dropped;

    // The run file: what batch-merge checks the shards against.
    writeFileAtomic(
      runFile,
      `${JSON.stringify({
        version: RESULTS_VERSION,
        input: o.input,
        inputCount: list.items.length,
        inputHash: sha256(list.items.map((it) => it.id).join('\n')),
        shard,
        model: o.model,
        modelHash: model_,
        methods,
        settings: Object.fromEntries(methodSettings),
        metrics: metricSettings_ ? Object.fromEntries(metricSettings_) : null,
        ids: items.map((it) => it.id),
        indexes: items.map((it) => it.index),
      })}\n`,
    );
    removePartials(outDir, jobs, format, o.png === true);

    const skipped = doneIds.size;
    const total = jobs.length;
    const { size: batchSize, bytesPerImage, mapShapes } = await chooseBatchSize(gpu, model, entries, o, total);
    say(
      `${o.model}: ${methods.join(', ')} on ${total} image${total === 1 ? '' : 's'}${shard ? ` (shard ${shard.index} of ${shard.count}, of ${list.items.length})` : ''}; ` +
        `${skipped} already done; batches of ${batchSize} (about ${formatBytes(bytesPerImage)} per image; memory budget ${formatBytes(gpu.memoryBudget)}); ` +
        `${workers} worker thread${workers > 1 ? 's' : ''} → ${outDir}`,
    );
    if (plan) say(`metrics of each map: ${plan.names.join(', ')}${plan.note ? `; ${plan.note}` : ''}`);

    const memStart = gpu.memory();
    const stats = { done: 0, failed: 0, decodeMs: 0, decodeWaitMs: 0, gpuMs: 0, metricMs: 0, writeMs: 0, writeWaitMs: 0 };
    /** The lines this run appends (for the metrics' means). */
    const written: ResultRecord[] = [];
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const progress = new Progress(total, skipped, o.json === true);
    pool = new WorkerPool(workers);
    const writer = new ResultsWriter(resultsFile);
    try {
      // Fixed batches of the shard's list: a resumed run makes the same batches, so its maps are
      // the same, bit for bit, as those of a run that was never stopped.
      const groups: Job[][] = [];
      for (let i = 0; i < jobs.length; i += batchSize) {
        const g = jobs.slice(i, i + batchSize);
        if (g.some((j) => j.pending)) groups.push(g);
      }
      const maxBytes = Math.round(o.maxFileSize * 1024 * 1024);
      const decode = (g: Job[]) =>
        Promise.all(g.map((j) => pool!.run({ kind: 'decode', file: j.item.file, crop: j.item.crop, channels: channels as 1 | 3, width, height, maxBytes })));
      const lookahead = Math.max(2, Math.ceil((2 * workers) / batchSize));
      const decoding: Promise<TaskResult[]>[] = groups.slice(0, lookahead).map(decode);
      let appending: Promise<void> = Promise.resolve();
      for (let gi = 0; gi < groups.length; gi++) {
        const group = groups[gi]!;
        const w0 = performance.now();
        const decoded = await decoding[gi]!;
        stats.decodeWaitMs += performance.now() - w0;
        if (gi + lookahead < groups.length) decoding.push(decode(groups[gi + lookahead]!));
        decoding[gi] = null as unknown as Promise<TaskResult[]>; // free the decoded data
        for (const r of decoded) stats.decodeMs += r.ms;

        const records = new Map<Job, ResultRecord>();
        const writes: Promise<void>[] = [];
        const fail = (j: Job, error: string) => j.pending && records.set(j, { id: j.item.id, path: j.item.path, status: 'failed', settings: j.imageKey, error });
        const ok: { job: Job; data: Float32Array }[] = [];
        const boxes = new Map<Job, Box[] | null>();
        group.forEach((j, k) => {
          const r = decoded[k]!;
          if (!r.ok) fail(j, r.error);
          else if ('data' in r) {
            ok.push({ job: j, data: r.data });
            if (plan) boxes.set(j, inputBoxes(j.item, r.source, plan, r.data, [channels, height, width]));
          }
        });
        // The maps kept from an earlier run whose metrics are to be done are read back from their
        // files; one that cannot be read is made again.
        const keptMaps = new Map<Job, Map<MethodName, { data: Float32Array; shape: number[] }>>();
        for (const { job: j } of ok) {
          for (const [m, mm] of j.metrics) {
            const entry = j.kept.get(m);
            if (!entry || mm.todo.length === 0) continue;
            const map = readMap(join(outDir, entry.files[0]!), format, m, mapShapes.get(m)!);
            if (map) keptMaps.set(j, (keptMaps.get(j) ?? new Map()).set(m, map));
            else {
              j.kept.delete(m);
              j.todo.push(m);
              mm.todo = [...mm.keys.keys()]; // a new map: every metric again
              Object.keys(mm.kept).forEach((k) => delete (mm.kept as Record<string, unknown>)[k]);
            }
          }
        }
        const g0 = performance.now();
        let maps: GroupResult[];
        try {
          maps = await explainGroup(gpu, model, ok, methods, o, classCount, classNames);
        } catch (e) {
          // A failure of the whole batch (out of memory, say): each image alone, to find the culprit.
          maps = [];
          for (const one of ok) {
            try {
              if (ok.length === 1) throw e;
              maps.push(...(await explainGroup(gpu, model, [one], methods, o, classCount, classNames)));
            } catch (e1) {
              if (!(e1 instanceof SaliencyError) || fatalGpuError(e1)) throw e1;
              maps.push({ job: one.job, error: e1.message });
            }
          }
        }
        stats.gpuMs += performance.now() - g0;
        const m0 = performance.now();
        const scores = plan ? await scoreGroup(model, maps, keptMaps, boxes, methods, plan, o, (task) => (done, all) => progress.note(`${task}: ${done}/${all}`)) : new Map<Job, Map<MethodName, MapMetrics> | string>();
        stats.metricMs += performance.now() - m0;

        for (const res of maps) {
          const j = res.job;
          if (!j.pending) continue; // in the batch only to keep the batches fixed
          const scored = scores.get(j);
          if ('error' in res) {
            fail(j, res.error);
            continue;
          }
          if (typeof scored === 'string') {
            fail(j, scored);
            continue;
          }
          const entries: Record<string, MethodEntry> = {};
          const metricValues: Record<string, MapMetrics> = {};
          const outputs: OutputFile[] = [];
          for (const m of methods) {
            const mm = j.metrics.get(m);
            const keys = mm ? { metrics: Object.fromEntries(mm.keys) } : {};
            if (mm) metricValues[m] = inOrder(plan!.names, scored?.get(m) ?? {}, mm.kept);
            const kept = j.kept.get(m);
            if (kept) {
              entries[m] = { files: kept.files, ms: kept.ms, settings: kept.settings, ...keys };
              continue;
            }
            const map = res.maps.get(m)!;
            const files = methodFiles(j.stem, m, format, o.png === true);
            const path = join(outDir, files[0]!);
            outputs.push(format === 'npy' ? { kind: 'npy', path, data: map.data, shape: map.shape } : { kind: 'safetensors', path, name: m, data: map.data, shape: map.shape, metadata: { id: j.item.id, method: m } });
            if (o.png) {
              outputs.push({ kind: 'png', path: join(outDir, files[1]!), data: map.data, shape: map.shape, input: res.input, channels, width, height, size: o.size, mapKind: methodByName(m).display });
            }
            entries[m] = { files, ms: round(map.ms, 4), settings: methodKey(j, m), ...keys };
          }
          records.set(j, {
            id: j.item.id,
            path: j.item.path,
            status: 'ok',
            settings: j.imageKey,
            target: res.target,
            predicted: res.top[0]!,
            top: res.top,
            methods: entries,
            ...(Object.keys(metricValues).length ? { metrics: metricValues } : {}),
            batch: ok.length,
          });
          writes.push(
            pool.run({ kind: 'write', outputs }).then((r) => {
              stats.writeMs += r.ms;
              if (!r.ok) throw new ArgumentError(r.error);
            }),
          );
        }
        // Lines go out in input order, each after its files exist; at most one batch's writes wait.
        const w1 = performance.now();
        await appending;
        stats.writeWaitMs += performance.now() - w1;
        const ordered = group.filter((j) => records.has(j)).map((j) => records.get(j)!);
        appending = Promise.all(writes).then(() => {
          for (const r of ordered) {
            writer.append(r);
            written.push(r);
            if (r.status === 'ok') stats.done++;
            else stats.failed++;
            progress.tick(r);
          }
        });
        appending.catch(() => undefined); // awaited at the next batch or at the end
      }
      const w2 = performance.now();
      await appending;
      stats.writeWaitMs += performance.now() - w2;
    } finally {
      progress.stop();
      writer.close();
    }
    const memEnd = gpu.memory();
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    const summary: BatchSummary = {
      done: stats.done,
      skipped,
      failed: stats.failed,
      total,
      shard,
      batchSize,
      workers,
      methods,
      results: resultsFile,
      seconds: round(seconds, 4),
      imagesPerSecond: round((stats.done + stats.failed) / Math.max(seconds, 1e-9), 4),
      decodeSeconds: round(stats.decodeMs / 1000, 4),
      decodeWaitSeconds: round(stats.decodeWaitMs / 1000, 4),
      gpuSeconds: round(stats.gpuMs / 1000, 4),
      metricSeconds: round(stats.metricMs / 1000, 4),
      metrics: null,
      writeSeconds: round(stats.writeMs / 1000, 4),
      writeWaitSeconds: round(stats.writeWaitMs / 1000, 4),
      cpuSeconds: round((cpu.user + cpu.system) / 1e6, 4),
      memory: {
        tensorsStart: memStart.tensors,
        tensorsEnd: memEnd.tensors,
        buffersStart: memStart.inUse,
        buffersEnd: memEnd.inUse,
        budgetBytes: memEnd.budgetBytes,
        peakBytes: memEnd.peakBytes,
        bytesPerImage: Math.round(bytesPerImage),
      },
    };
    say(
      `done ${stats.done}, skipped ${skipped}, failed ${stats.failed} in ${seconds.toFixed(1)} s (${summary.imagesPerSecond.toFixed(1)} images/s; ` +
        `GPU ${summary.gpuSeconds.toFixed(1)} s, ${plan ? `metrics ${summary.metricSeconds.toFixed(1)} s, ` : ''}decoding ${summary.decodeSeconds.toFixed(1)} s on the workers) → ${resultsFile}`,
    );
    if (stats.failed > 0) say(`the failed images and their errors: grep '"status":"failed"' ${resultsFile}`);
    if (plan) {
      // The means over every line of the results file: those kept from earlier runs and this run's.
      const lines = [...jobs.filter((j) => !j.pending).map((j) => previous.records.get(j.item.id)!), ...written];
      summary.metrics = { names: plan.names, means: metricMeans(lines, methods, plan.names) };
      say(`metrics, means over the images of ${basename(resultsFile)} (${summary.metricSeconds.toFixed(1)} s this run):`);
      for (const line of formatMeans(summary.metrics.means)) say(`  ${line}`);
    }
    model.dispose();
    return summary;
  } finally {
    await pool?.close();
    lock.release();
    gpu.destroy();
  }
}

type GroupResult =
  | { job: Job; error: string }
  | { job: Job; target: number; top: ClassScore[]; input: Float32Array; maps: Map<MethodName, { data: Float32Array; shape: number[]; ms: number }> };

/**
 * A map written by an earlier run, read back for its metrics: float32 of the shape this run's
 * method makes (`shape`, [C, H, W]), or null when the file cannot be read or holds something else.
 */
function readMap(file: string, format: Format, method: MethodName, shape: readonly number[]): { data: Float32Array; shape: number[] } | null {
  const size = shape.reduce((a, b) => a * b, 1);
  try {
    const bytes = readRegularFile(file, { maxBytes: 4 * size + 65536, what: 'map' });
    const map = format === 'npy' ? decodeNpy(bytes, file) : parseSafetensors(bytes, file).tensors.get(method);
    if (!map || map.shape.join() !== shape.join() || map.data.length !== size) return null;
    return { data: map.data, shape: [...map.shape] };
  } catch (e) {
    if (e instanceof SaliencyError || (e as NodeJS.ErrnoException).code !== undefined) return null;
    throw e;
  }
}

/** A map's metric values in the order of `names`: those just computed, else those kept. */
function inOrder(names: readonly MetricName[], computed: MapMetrics, kept: MapMetrics): MapMetrics {
  const out: MapMetrics = {};
  for (const n of names) {
    if (Object.hasOwn(computed, n)) Object.assign(out, { [n]: computed[n] });
    else if (Object.hasOwn(kept, n)) Object.assign(out, { [n]: kept[n] });
  }
  return out;
}

/**
 * The metrics still to do of every image of a batch whose maps are ready (computed now, or kept and
 * read back), method by method. When a call fails for the whole batch, each image is scored alone
 * to find the culprit: an image whose metrics fail gets the error (its line fails).
 */
async function scoreGroup(
  model: LoadedModel,
  results: readonly GroupResult[],
  keptMaps: ReadonlyMap<Job, ReadonlyMap<MethodName, { data: Float32Array; shape: number[] }>>,
  boxes: ReadonlyMap<Job, Box[] | null>,
  methods: readonly MethodName[],
  plan: MetricPlan,
  o: BatchOptions,
  progress: MetricProgress,
): Promise<Map<Job, Map<MethodName, MapMetrics> | string>> {
  const out = new Map<Job, Map<MethodName, MapMetrics> | string>();
  const live = results.filter((r): r is Extract<GroupResult, { maps: unknown }> => !('error' in r) && r.job.pending);
  for (const m of methods) {
    const owners: Job[] = [];
    const items: ScoreItem[] = [];
    for (const r of live) {
      const todo = r.job.metrics.get(m)?.todo ?? [];
      if (todo.length === 0 || typeof out.get(r.job) === 'string') continue;
      const map = r.maps.get(m) ?? keptMaps.get(r.job)?.get(m);
      if (!map) continue;
      owners.push(r.job);
      items.push({ input: r.input, target: r.target, map, boxes: boxes.get(r.job) ?? null, metrics: todo });
    }
    if (items.length === 0) continue;
    const score = (part: ScoreItem[]) => scoreMaps(model, m, part, plan, methodSettingsOf(o), progress);
    let values: (MapMetrics | string)[];
    try {
      values = await score(items);
    } catch (e) {
      if (!(e instanceof SaliencyError) || fatalGpuError(e)) throw e;
      values = [];
      for (const item of items) {
        try {
          if (items.length === 1) throw e;
          values.push((await score([item]))[0]!);
        } catch (e1) {
          if (!(e1 instanceof SaliencyError) || fatalGpuError(e1)) throw e1;
          values.push(`${m}: ${e1.message}`);
        }
      }
    }
    values.forEach((v, k) => {
      const job = owners[k]!;
      if (typeof v === 'string') out.set(job, v);
      else {
        const per = out.get(job);
        if (per === undefined) out.set(job, new Map([[m, v]]));
        else if (typeof per !== 'string') per.set(m, v);
      }
    });
  }
  return out;
}

/** Errors after which no image can succeed: the run stops instead of failing every image. */
function fatalGpuError(e: SaliencyError): boolean {
  return e instanceof GpuError && /device was lost|was destroyed/.test(e.message);
}

/**
 * One GPU batch: the forward pass (predictions and top-k), then each method still to do for some
 * image of the batch, on the whole batch. Maps with non-finite values fail their image.
 */
async function explainGroup(
  gpu: Gpu,
  model: LoadedModel,
  ok: { job: Job; data: Float32Array }[],
  methods: readonly MethodName[],
  o: BatchOptions,
  classCount: number,
  classNames: readonly string[],
): Promise<GroupResult[]> {
  if (ok.length === 0) return [];
  const n = ok.length;
  const pixels = ok[0]!.data.length;
  const batch = new Float32Array(n * pixels);
  ok.forEach((one, i) => batch.set(one.data, i * pixels));
  const x = tensor(gpu, batch, [n, ...model.inputShape]);
  try {
    const out = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const logits = await out.read();
    out.dispose();
    const named = (c: number, p: number): ClassScore => (classNames[c] !== undefined ? { class: c, name: classNames[c], probability: round(p, 6) } : { class: c, probability: round(p, 6) });
    const results = ok.map((one, i) => {
      const z = logits.subarray(i * classCount, (i + 1) * classCount);
      // One output (a sigmoid head): its probability is σ(logit).
      const probs = classCount === 1 ? [1 / (1 + Math.exp(-z[0]!))] : softmax(z);
      const order = probs.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      const top = order.slice(0, Math.min(o.topK, classCount)).map(([p, c]) => named(c, p));
      const target = one.job.target === 'top' ? order[0]![1] : one.job.target;
      return { job: one.job, target, top, input: one.data, maps: new Map<MethodName, { data: Float32Array; shape: number[]; ms: number }>(), error: null as string | null };
    });
    const needed = methods.filter((m) => ok.some((one) => one.job.todo.includes(m)));
    for (const m of needed) {
      const t0 = performance.now();
      const entry = methodByName(m);
      const targets = results.map((r) => r.target);
      let data: Float32Array;
      let shape: number[];
      if (batchesItself(entry)) {
        // SmoothGrad: one image per call, so that an image's map (its noise) does not depend on
        // the images batched with it; it batches its noisy samples itself within the budget.
        const parts: Float32Array[] = [];
        shape = [];
        for (let i = 0; i < n; i++) {
          const xi = sliceImages(x, i, 1);
          const raw = await computeMap(entry, model, xi, [targets[i]!], o).finally(() => xi.dispose());
          shape = raw.shape.slice(1);
          parts.push(await raw.read().finally(() => raw.dispose()));
        }
        data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
        parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
      } else {
        const raw = await computeMap(entry, model, x, targets, o);
        try {
          data = await raw.read();
        } finally {
          raw.dispose();
        }
        shape = raw.shape.slice(1);
      }
      const ms = (performance.now() - t0) / n;
      const per = data.length / n;
      results.forEach((r, i) => {
        const map = data.slice(i * per, (i + 1) * per);
        let bad = 0;
        for (const v of map) if (!Number.isFinite(v)) bad++;
        if (bad > 0 && r.error === null) r.error = `${m}: the map has ${bad} non-finite value${bad > 1 ? 's' : ''} (of ${per})`;
        r.maps.set(m, { data: map, shape, ms });
      });
      // Here the batch x, the raw maps and the targets are all at hand: this is where `--metric`
      // will score each map (deletion/insertion curves of src/saliency/metrics, into the record's
      // `metrics` field) when those metrics exist.
    }
    return results.map((r) => (r.error !== null ? { job: r.job, error: r.error } : { job: r.job, target: r.target, top: r.top, input: r.input, maps: r.maps }));
  } finally {
    x.dispose();
  }
}

/**
 * Removes the temporary files (`.<name>.<random>.partial`) a killed run left beside this shard's
 * outputs. Only names of this shard's own outputs: another shard may be writing in the same folder.
 */
function removePartials(outDir: string, jobs: Job[], format: Format, png: boolean): void {
  const ours = new Set<string>();
  const dirs = new Set<string>();
  for (const j of jobs) {
    for (const m of CLASSIFIER_METHOD_NAMES) {
      for (const f of methodFiles(j.stem, m, format, png)) {
        ours.add(join(outDir, f));
        dirs.add(dirname(join(outDir, f)));
      }
    }
  }
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^\.(.+)\.[0-9a-f]{12}\.partial$/.exec(name);
      if (m && ours.has(join(dir, m[1]!))) rmSync(join(dir, name), { force: true });
    }
  }
}

/** The progress bar on a terminal (images/s and ETA), or a line every 10 s in a log. */
class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly start = performance.now();
  private count = 0;
  private failed = 0;
  private task = '';
  private lastLog = performance.now();
  constructor(
    private readonly total: number,
    private readonly skipped: number,
    json: boolean,
  ) {
    const stream = json ? process.stderr : process.stdout;
    this.bar = stream.isTTY
      ? new cliProgress.SingleBar(
          { format: '  [{bar}] {value}/{total} images | {rate} images/s | ETA {etaText} | {failed} failed{task}', stream, hideCursor: true, etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        )
      : null;
    this.bar?.start(total, skipped, { rate: '–', etaText: '–', failed: 0, task: '' });
  }
  /** What the run is doing within a batch (a metric's progress), shown beside the images' count. */
  note(task: string): void {
    this.task = task;
    if (this.bar) this.bar.update({ task: ` | ${task}` });
    else this.log();
  }
  /** A line on stderr every 10 s when there is no bar. */
  private log(): void {
    if (performance.now() - this.lastLog <= 10_000) return;
    this.lastLog = performance.now();
    const now = this.task ? `; ${this.task}` : '';
    process.stderr.write(`  ${this.skipped + this.count}/${this.total} images, ${this.rate().toFixed(1)} images/s, ETA ${this.eta()}, ${this.failed} failed${now}\n`);
  }
  private rate(): number {
    return this.count / Math.max((performance.now() - this.start) / 1000, 1e-9);
  }
  private eta(): string {
    const r = this.rate();
    const left = this.total - this.skipped - this.count;
    if (!(r > 0)) return '–';
    const s = Math.round(left / r);
    return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
  }
  tick(r: ResultRecord): void {
    this.count++;
    if (r.status === 'failed') this.failed++;
    this.task = '';
    if (this.bar) {
      this.bar.update(this.skipped + this.count, { rate: this.rate().toFixed(1), etaText: this.eta(), failed: this.failed, task: '' });
    } else this.log();
  }
  stop(): void {
    this.bar?.stop();
  }
}
