/**
 * `saliency metrics`: measures each method's maps on one or more images (docs/metrics.md) and
 * prints a table (method × metric, mean ± standard deviation over the images), with a seeded random
 * map as the control row. Writes metrics.json (every number, per image), curves.png (the mean
 * deletion and insertion curves of each method) and, with randomisation, randomisation.png.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import cliProgress from 'cli-progress';
import { ArgumentError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/files.js';
import { initGpu } from '../runtime/gpu.js';
import { tensor } from '../runtime/tensor.js';
import { methodByName, type ClassifierMethodName, type ClassifierSettings } from '../saliency/methods.js';
import type { MapData } from '../saliency/display.js';
import { tileImages, writePng } from '../saliency/image.js';
import * as metrics from '../saliency/metrics/index.js';
import { linePlot, type PlotSeries } from '../saliency/plot.js';
import { loadInput, parseCrop } from './explain.js';
import { checkOutputDirectory, gpuOptions, lazyOutputDirectory } from './output.js';
import { decimal } from './parse.js';
import { loadModelArgument } from './train.js';
import { METRIC_NAMES, checkStep, contentBox, parseBox, parseList, parseOrder, parsePercentages, randomisationPerImage, type MetricFlags, type MetricName } from './metric-options.js';

export { METRIC_NAMES, type MetricName };

/** The control row's name. */
const RANDOM = 'random';

export interface MetricsCommandOptions extends MetricFlags {
  model: string;
  image: string[];
  crop?: string;
  method: string;
  metric: string;
  target: string;
  layer?: string;
  samples: number;
  noiseLevel: number;
  seed: number;
  /** Images per forward pass (and per method call), or 'auto': as many as fit the memory budget. */
  batchSize: number | 'auto';
  /** GPU memory budget in MiB (default: initGpu's). */
  memoryBudget?: number;
  out: string;
}

/** Mean and standard deviation over images, and the values. */
interface Summary {
  mean: number;
  std: number;
  values: number[];
}

function summary(values: number[]): Summary {
  return { ...metrics.meanAndStd(values), values };
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** The image files named: files as given, folders as their PNG and JPEG files in name order. */
export function imageFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      throw new ArgumentError(`--image ${p}: no such file or folder`);
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const files = readdirSync(p, { withFileTypes: true })
      .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    if (files.length === 0) throw new ArgumentError(`--image ${p}: the folder holds no .png or .jpg files`);
    out.push(...files.map((f) => join(p, f)));
  }
  return out;
}

function fmt(s: Summary | number | null | undefined, digits = 3): string {
  if (s === null || s === undefined) return '—';
  if (typeof s === 'number') return Number.isFinite(s) ? s.toFixed(digits) : String(s);
  if (!Number.isFinite(s.mean)) return '—';
  return s.values.length > 1 ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}` : s.mean.toFixed(digits);
}

/** Column heads and how to read each metric's result (arrows: which way is better). */
const COLUMNS: Record<MetricName, { head: string; cell: (r: MethodResults) => string }[]> = {
  deletion: [{ head: 'deletion AUC ↓', cell: (r) => fmt(r.deletion?.auc) }],
  insertion: [{ head: 'insertion AUC ↑', cell: (r) => fmt(r.insertion?.auc) }],
  road: [
    { head: 'ROAD MoRF ↓', cell: (r) => fmt(r.road?.morf) },
    { head: 'ROAD LeRF ↑', cell: (r) => fmt(r.road?.lerf) },
    { head: 'ROAD (LeRF−MoRF)/2 ↑', cell: (r) => fmt(r.road?.combined) },
  ],
  averageDrop: [
    { head: 'Avg Drop % ↓', cell: (r) => fmt(r.averageDrop?.drop, 1) },
    { head: 'Increase % ↑', cell: (r) => fmt(r.averageDrop?.increase, 1) },
  ],
  maxSensitivity: [{ head: 'max-sensitivity ↓', cell: (r) => fmt(r.maxSensitivity) }],
  randomisation: [
    { head: 'randomised: Spearman |E| ↓', cell: (r) => fmt(r.randomisation?.finalSpearmanAbs) },
    { head: 'randomised: SSIM ↓', cell: (r) => fmt(r.randomisation?.finalSsim) },
  ],
  pointingGame: [{ head: 'pointing game % ↑', cell: (r) => fmt(r.pointingGame === undefined ? undefined : r.pointingGame.accuracy * 100, 1) }],
};

interface MethodResults {
  deletion?: { auc: Summary; curves: number[][] };
  insertion?: { auc: Summary; curves: number[][] };
  road?: { morf: Summary; lerf: Summary; combined: Summary; percentages: number[] };
  averageDrop?: { drop: Summary; increase: number; y: number[]; o: number[] };
  maxSensitivity?: Summary;
  randomisation?: { order: string; layers: string[]; finalSpearmanAbs: Summary; finalSsim: Summary; steps: metrics.RandomisationStep[] };
  pointingGame?: { accuracy: number; hits: boolean[]; points: [number, number][] };
}

export async function metricsCommand(o: MetricsCommandOptions): Promise<void> {
  // Every option is checked before the GPU starts.
  const methods = parseList('--method', o.method, metrics.METRIC_METHODS);
  const chosen = parseList('--metric', o.metric, METRIC_NAMES);
  const targetArg = o.target === 'top' ? 'top' : decimal(o.target);
  if (targetArg !== 'top' && (!Number.isSafeInteger(targetArg) || targetArg < 0)) throw new ArgumentError(`--target must be a class index or 'top', got '${o.target}'`);
  const percentages = parsePercentages(o.percentages);
  const order = parseOrder(o.order);
  const box = parseBox(o.box);
  if (o.metric !== 'all' && chosen.includes('pointingGame') && box === undefined) {
    throw new ArgumentError('pointingGame needs the object\'s box: give --box x1,y1,x2,y2 (model-input pixels) or --box auto');
  }
  const metricList = chosen.filter((m) => m !== 'pointingGame' || box !== undefined);
  if (metricList.length < chosen.length) console.log('  pointingGame: skipped (it needs the object\'s box: --box x1,y1,x2,y2 or --box auto)');
  const crop = parseCrop(o.crop);
  const files = imageFiles(o.image);
  checkOutputDirectory('--out', o.out);
  const outDir = lazyOutputDirectory('--out', o.out);

  const gpu = await initGpu(gpuOptions(o.memoryBudget));
  try {
    const model = await loadModelArgument(gpu, o.model);
    if (model.outputShape.length !== 1) {
      throw new ArgumentError(`'${o.model}' is not a classifier (its output per image is [${model.outputShape.join(', ')}]); the metrics score a class`);
    }
    // What the model cannot do (CAM's head) and --layer are checked before any method runs; with
    // --method all, a method the model cannot do is skipped.
    for (const name of [...methods]) {
      const reason = methodByName(name as ClassifierMethodName).unsupported(model);
      if (reason === null) continue;
      if (o.method !== 'all') throw new ArgumentError(reason);
      console.log(`  ${name}: skipped (${reason})`);
      methods.splice(methods.indexOf(name), 1);
    }
    for (const name of methods) methodByName(name as ClassifierMethodName).check(model, { layer: o.layer });
    if (o.layer !== undefined && !methods.some((m) => methodByName(m as ClassifierMethodName).options.includes('layer'))) model.layer(o.layer);

    const [c, h, w] = model.inputShape as [number, number, number];
    checkStep(o.step, h, w);
    const inputs = files.map((f) => loadInput(model, f, crop).data);
    const n = inputs.length;
    const all = new Float32Array(n * c * h * w);
    inputs.forEach((d, i) => all.set(d, i * c * h * w));
    const x = tensor(gpu, all, [n, c, h, w]);
    const boxes = box === undefined ? undefined : inputs.map((d) => (box === 'auto' ? contentBox(d, c, h, w) : box));
    const batchSize = o.batchSize ?? 'auto';
    // The class explained for each image, decided once on the clean image.
    const { classes: targets } = await metrics.classScores(model, x, { target: targetArg, batchSize });
    const className = (k: number) => model.classNames?.[k] ?? `class ${k}`;
    console.log(
      `model ${model.name}: ${n} image${n === 1 ? '' : 's'}; explaining ${n === 1 ? className(targets[0]!) : `${targetArg === 'top' ? 'each image\'s predicted class' : className(targetArg as number)}`}; ` +
        `metrics: ${metricList.join(', ')}`,
    );

    // Every method reads the settings its registry entry lists.
    const methodOptions = (): Omit<ClassifierSettings, 'target'> => ({ layer: o.layer, samples: o.samples, noiseLevel: o.noiseLevel, seed: o.seed });
    const rows = [...methods, RANDOM];
    const results: Record<string, MethodResults> = Object.create(null) as Record<string, MethodResults>;
    const bar = process.stdout.isTTY ? new cliProgress.SingleBar({ format: '  {task} [{bar}] {value}/{total} {eta_formatted}', etaBuffer: 20 }, cliProgress.Presets.shades_classic) : null;
    const track = (task: string) => (done: number, total: number) => {
      if (!bar) return;
      if (!bar.getTotal() || bar.getTotal() !== total) bar.start(total, 0, { task });
      bar.update(done, { task });
    };
    for (const row of rows) {
      const r: MethodResults = (results[row] = {});
      const t0 = performance.now();
      const method = row === RANDOM ? null : metrics.metricMethod('metrics', row);
      let maps: MapData;
      if (method) {
        const parts: { start: number; values: Float32Array }[] = [];
        let shape: number[] = [];
        const images = async (start: number, count: number) => tensor(gpu, all.subarray(start * c * h * w, (start + count) * c * h * w), [count, c, h, w]);
        await metrics.explainInBatches(row, model, method, n, images, targets, methodOptions(), { batchSize }, async (start, raw) => {
          parts.push({ start, values: await raw.read() });
          shape = [...raw.shape];
        });
        const per = shape.slice(1).reduce((a, b) => a * b, 1);
        maps = { data: parts.length === 1 ? parts[0]!.values : new Float32Array(n * per), shape: [n, ...shape.slice(1)] };
        if (parts.length > 1) for (const p of parts) maps.data.set(p.values, p.start * per);
      } else maps = metrics.randomMap(n, h, w, o.seed);
      const kind = method?.kind ?? 'attribution';
      const common = { target: targets, kind, batchSize };
      try {
        for (const metric of metricList) {
          const task = `${row} ${metric}`;
          const onProgress = track(task);
          switch (metric) {
            case 'deletion':
            case 'insertion': {
              const res = await metrics[metric](model, x, maps, { ...common, step: o.step, onProgress });
              r[metric] = { auc: summary(res.map((q) => q.auc)), curves: res.map((q) => q.curve) };
              break;
            }
            case 'road': {
              const res = await metrics.road(model, x, maps, { ...common, percentages, seed: o.seed, onProgress });
              r.road = {
                morf: summary(res.map((q) => q.morfMean)),
                lerf: summary(res.map((q) => q.lerfMean)),
                combined: summary(res.map((q) => q.combined)),
                percentages: res[0]!.percentages,
              };
              break;
            }
            case 'averageDrop': {
              const res = await metrics.averageDrop(model, x, maps, { ...common, onProgress });
              r.averageDrop = {
                drop: summary(res.images.map((im) => (100 * Math.max(0, im.y - im.o)) / im.y)),
                increase: res.increase,
                y: res.images.map((im) => im.y),
                o: res.images.map((im) => im.o),
              };
              break;
            }
            case 'maxSensitivity': {
              if (!method) break; // the control ignores the input: 0 by construction
              // By name, so that the metric knows that SmoothGrad batches its own samples (metrics.batchesItself).
              const res = await metrics.maxSensitivity(model, row, x, {
                target: targets,
                batchSize,
                radius: o.radius,
                samples: o.sensitivitySamples,
                seed: o.seed,
                methodOptions: methodOptions(),
                onProgress,
              });
              r.maxSensitivity = summary(res.values);
              break;
            }
            case 'randomisation': {
              if (!method) break; // the control ignores the model: similarity 1 by construction
              const res = await metrics.randomisation(model, row, x, {
                target: targets,
                kind,
                batchSize,
                order,
                seed: o.seed,
                methodOptions: methodOptions(),
                onProgress,
              });
              const perImage = randomisationPerImage(res, n);
              r.randomisation = { order: res.order, layers: res.layers, finalSpearmanAbs: summary(perImage.spearmanAbs), finalSsim: summary(perImage.ssim), steps: res.steps };
              break;
            }
            case 'pointingGame': {
              const res = await metrics.pointingGame(maps, boxes!, { tolerance: o.tolerance, kind });
              r.pointingGame = { accuracy: res.accuracy, hits: res.images.map((im) => im.hit), points: res.images.map((im) => im.point) };
              break;
            }
          }
          bar?.stop();
          if (!bar && (method || (metric !== 'maxSensitivity' && metric !== 'randomisation'))) console.log(`  ${task}: done`);
        }
      } finally {
        bar?.stop();
      }
      console.log(`  ${row.padEnd(15)} ${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s`);
    }
    x.dispose();
    model.dispose();

    const columns = metricList.flatMap((m) => COLUMNS[m]);
    const table = [['method', ...columns.map((col) => col.head)], ...rows.map((row) => [row, ...columns.map((col) => col.cell(results[row]!))])];
    const widths = table[0]!.map((_, j) => Math.max(...table.map((line) => [...line[j]!].length)));
    console.log('');
    for (const line of table) console.log(line.map((cell, j) => cell + ' '.repeat(widths[j]! - [...cell].length)).join('  '));
    if (n > 1) console.log(`(mean ± standard deviation over the ${n} images)`);

    const json = {
      model: o.model,
      images: files,
      targets,
      options: {
        method: o.method,
        metric: o.metric,
        target: o.target,
        layer: o.layer ?? null,
        smoothGrad: { samples: o.samples, noiseLevel: o.noiseLevel },
        seed: o.seed,
        step: o.step ?? w,
        batchSize,
        percentages: percentages ?? metrics.ROAD_PERCENTAGES,
        maxSensitivity: { radius: o.radius, samples: o.sensitivitySamples },
        randomisation: { order: o.order },
        pointingGame: box === undefined ? null : { box, tolerance: o.tolerance },
      },
      table: Object.fromEntries(rows.map((row) => [row, Object.fromEntries(columns.map((col) => [col.head, col.cell(results[row]!)]))])),
      results,
    };
    const jsonFile = join(outDir(), 'metrics.json');
    // Six significant digits: the scores are float32 sums, and the file stays small.
    writeFileAtomic(jsonFile, JSON.stringify(json, (_, v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(6)) : v)) + '\n');
    console.log(`\nall numbers → ${jsonFile}`);
    const panels = (['deletion', 'insertion'] as const).filter((m) => metricList.includes(m)).map((m) => curvesPlot(m, rows, results));
    if (panels.length) {
      const file = join(outDir(), 'curves.png');
      writePng(file, tileImages(panels, { gap: 8 }));
      console.log(`curves → ${file}`);
    }
    if (metricList.includes('randomisation')) {
      const file = join(outDir(), 'randomisation.png');
      writePng(file, randomisationPlot(rows.filter((r) => results[r]!.randomisation), results, o.order));
      console.log(`randomisation → ${file}`);
    }
  } finally {
    gpu.destroy();
  }
}

/** The mean curve of each method (the control dashed), AUC in the legend. */
export function curvesPlot(metric: 'deletion' | 'insertion', rows: readonly string[], results: Record<string, MethodResults>): ReturnType<typeof linePlot> {
  const series: PlotSeries[] = rows.map((row) => {
    const r = results[row]![metric]!;
    const points = r.curves[0]!.length;
    const mean = Array.from({ length: points }, (_, k) => r.curves.reduce((a, cv) => a + cv[k]!, 0) / r.curves.length);
    return { label: `${row} (${r.auc.mean.toFixed(3)})`, y: mean, ...(row === RANDOM ? { color: [0, 0, 0] as [number, number, number], dashed: true } : {}) };
  });
  const n = results[rows[0]!]![metric]!.curves.length;
  return linePlot({
    series,
    title: `${metric} (AUC; ${n > 1 ? `mean of ${n} images` : 'one image'})`,
    xLabel: metric === 'deletion' ? 'fraction of pixels deleted' : 'fraction of pixels inserted',
    yLabel: 'score f_c',
    xRange: [0, 1],
  });
}

/** Spearman |E| and SSIM against the trained model's maps, per randomisation step. */
export function randomisationPlot(rows: readonly string[], results: Record<string, MethodResults>, order: string): ReturnType<typeof linePlot> {
  const first = results[rows[0]!]!.randomisation!;
  const categories = ['none', ...first.layers];
  const plot = (key: 'spearmanAbs' | 'ssim', label: string) =>
    linePlot({
      series: rows.map((row) => ({ label: row, y: results[row]!.randomisation!.steps.map((s) => s.mean[key]) })),
      title: `${order} randomisation: ${label}`,
      xLabel: order === 'cascading' ? 'layers re-initialised, from the top' : 'the one layer re-initialised',
      yLabel: `${label} to the trained model's map`,
      xCategories: categories,
      yRange: [Math.min(-0.2, ...rows.flatMap((row) => results[row]!.randomisation!.steps.map((s) => s.mean[key]))), 1],
      height: 460,
    });
  return tileImages([plot('spearmanAbs', 'Spearman |E|'), plot('ssim', 'SSIM')], { gap: 8 });
}
