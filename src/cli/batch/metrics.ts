/**
 * `saliency batch --metric`: the metrics of docs/metrics.md (src/saliency/metrics) scored on each
 * image's maps, for its results line, with the options and defaults of `saliency metrics`.
 *
 * An image's values are those the library gives for that image alone, whatever images share its
 * batch: deletion, insertion, Average Drop, randomisation and the pointing game score each image
 * on its own (they run on the images of a batch together); ROAD's noise and max-sensitivity's
 * perturbations come from streams keyed by the image's place in the batch, so those two run on one
 * image at a time. The perturbed images of every metric are scored in batches within the GPU
 * memory budget (the library's `batchSize: 'auto'`), from what the batch of images leaves.
 */
import { ArgumentError } from '../../runtime/errors.js';
import { tensor, type Tensor } from '../../runtime/tensor.js';
import type { Box, MapData } from '../../saliency/display.js';
import * as metrics from '../../saliency/metrics/index.js';
import { methodByName, type ClassifierMethodName, type ClassifierSettings } from '../../saliency/methods.js';
import type { LoadedModel } from '../train.js';
import { BATCH_ALL_METRICS, METRIC_NAMES, contentBox, parseBox, parseList, parseOrder, parsePercentages, randomisationPerImage, type MetricFlags, type MetricName } from '../metric-options.js';
import { sha256, type InputItem } from './inputs.js';
import type { MapMetrics, ResultRecord } from './results.js';

/** Metrics run on one image at a time (their random streams are keyed by the image's place in the batch). */
const ONE_IMAGE_EACH: ReadonlySet<MetricName> = new Set(['road', 'maxSensitivity']);

/** The metrics of a run and their settings, checked before any GPU work. */
export interface MetricPlan {
  /** The metrics, in the order of METRIC_NAMES. */
  names: MetricName[];
  /** A message for the user on what was left out, or null. */
  note: string | null;
  step?: number;
  percentages: number[];
  radius: number;
  sensitivitySamples: number;
  order: 'cascading' | 'independent';
  tolerance: number;
  seed: number;
  /** --box: the box of images whose manifest row gives none (model-input pixels), or auto. */
  box?: Box | 'auto';
}

/** --metric and the metrics' options, checked; null without --metric. */
export function parseMetricPlan(text: string | undefined, o: MetricFlags & { seed: number }, items: readonly InputItem[]): MetricPlan | null {
  if (text === undefined) return null;
  const chosen = parseList('--metric', text, METRIC_NAMES, BATCH_ALL_METRICS);
  const named = new Set(text.split(',').map((s) => s.trim()));
  const percentages = parsePercentages(o.percentages) ?? [...metrics.ROAD_PERCENTAGES];
  const order = parseOrder(o.order);
  const box = parseBox(o.box);
  const notes: string[] = [];
  const withBox = box !== undefined ? items.length : items.filter((it) => it.boxes).length;
  let names = METRIC_NAMES.filter((m) => chosen.includes(m));
  if (names.includes('pointingGame') && withBox === 0) {
    if (named.has('pointingGame')) {
      throw new ArgumentError("pointingGame needs each image's object box: a 'box' column in the manifest (x1,y1,x2,y2 in the image's pixels) or --box x1,y1,x2,y2 (model-input pixels) or --box auto");
    }
    names = names.filter((m) => m !== 'pointingGame');
    notes.push("pointingGame left out: no image has a box (a manifest's 'box' column, or --box)");
  } else if (names.includes('pointingGame') && withBox < items.length) {
    notes.push(`pointingGame only for the ${withBox} of ${items.length} images with a box`);
  }
  if (named.has('all') && !named.has('randomisation')) notes.push('randomisation is not part of all in batch, as it re-runs each method once per layer: name it to have it');
  return {
    names,
    note: notes.length ? notes.join('; ') : null,
    ...(o.step !== undefined ? { step: o.step } : {}),
    percentages,
    radius: o.radius,
    sensitivitySamples: o.sensitivitySamples,
    order,
    tolerance: o.tolerance,
    seed: o.seed,
    ...(box !== undefined ? { box } : {}),
  };
}

/**
 * Each metric's settings as text, for the settings hashes: everything that decides its values
 * besides the map (whose own hash is added per method).
 */
export function metricSettings(plan: MetricPlan, width: number): Map<MetricName, string> {
  const { seed } = plan;
  const step = plan.step ?? width;
  const all: Record<MetricName, object> = {
    deletion: { step, baseline: 'zero', score: 'probability' },
    insertion: { step, baseline: 'blur', score: 'probability' },
    road: { percentages: plan.percentages, sigma: 0.01, tolerance: 1e-5, seed, calls: 'one image each' },
    averageDrop: { score: 'probability' },
    maxSensitivity: { radius: plan.radius, samples: plan.sensitivitySamples, seed, calls: 'one image each' },
    randomisation: { order: plan.order, seed, layers: 'all' },
    pointingGame: { tolerance: plan.tolerance },
  };
  return new Map(plan.names.map((m) => [m, JSON.stringify({ metric: m, ...all[m] })]));
}

/**
 * The settings hash of each metric of an image's map (`mapKey`: the map's own hash); the pointing
 * game only for an image with a box, which is part of its hash.
 */
export function metricKeys(plan: MetricPlan, settings: ReadonlyMap<MetricName, string>, mapKey: string, item: InputItem): Map<MetricName, string> {
  const out = new Map<MetricName, string>();
  for (const m of plan.names) {
    let text = `${mapKey}\n${settings.get(m)!}`;
    if (m === 'pointingGame') {
      if (!item.boxes && plan.box === undefined) continue;
      text += `\n${JSON.stringify(item.boxes ? { image: item.boxes } : { input: plan.box })}`;
    }
    out.set(m, sha256(text).slice(0, 16));
  }
  return out;
}

/**
 * An image's boxes in model-input pixels: the manifest's (pixels of the original image of size
 * `source`, through the crop and the resize to the input), else --box; null when it has none.
 */
export function inputBoxes(item: InputItem, source: readonly [number, number], plan: MetricPlan, input: Float32Array, dims: readonly [number, number, number]): Box[] | null {
  const [c, h, w] = dims;
  if (item.boxes) {
    const [cx, cy, cw, ch] = item.crop ?? [0, 0, source[0], source[1]];
    const [sx, sy] = [w / cw, h / ch];
    return item.boxes.map(([x1, y1, x2, y2]) => [(x1 - cx) * sx, (y1 - cy) * sy, (x2 - cx) * sx, (y2 - cy) * sy]);
  }
  if (plan.box === 'auto') return [contentBox(input, c, h, w)];
  return plan.box ? [plan.box] : null;
}

/** One image's map to score, and what to score it with. */
export interface ScoreItem {
  /** The model input [C, H, W]. */
  input: Float32Array;
  target: number;
  /** The method's raw map [C', h, w]. */
  map: { data: Float32Array; shape: number[] };
  /** The object's boxes (model-input pixels), for the pointing game. */
  boxes: Box[] | null;
  /** The metrics to compute. */
  metrics: readonly MetricName[];
}

/** Progress of the current metric: `task` names it; called with the work done and the total. */
export type MetricProgress = (task: string) => (done: number, total: number) => void;

/**
 * Scores one method's maps of some images with the metrics each asks for; returns each image's
 * values. Frees every GPU tensor it makes.
 */
export async function scoreMaps(
  model: LoadedModel,
  method: ClassifierMethodName,
  items: readonly ScoreItem[],
  plan: MetricPlan,
  methodOptions: Omit<ClassifierSettings, 'target'>,
  progress: MetricProgress,
): Promise<MapMetrics[]> {
  const [c, h, w] = model.inputShape as [number, number, number];
  const gpu = model.gpu;
  const kind = methodByName(method).display;
  const out = items.map((): MapMetrics => ({}));
  const imagesOf = (idx: readonly number[]): Tensor => {
    const data = new Float32Array(idx.length * c * h * w);
    idx.forEach((k, j) => data.set(items[k]!.input, j * c * h * w));
    return tensor(gpu, data, [idx.length, c, h, w]);
  };
  const mapsOf = (idx: readonly number[]): MapData => {
    const shape = items[idx[0]!]!.map.shape;
    const per = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(idx.length * per);
    idx.forEach((k, j) => {
      const m = items[k]!.map;
      if (m.data.length !== per || m.shape.join() !== shape.join()) throw new ArgumentError(`${method}: maps of different shapes in one batch ([${m.shape.join(', ')}] and [${shape.join(', ')}])`);
      data.set(m.data, j * per);
    });
    return { data, shape: [idx.length, ...shape] };
  };
  const common = { kind, batchSize: 'auto' as const };
  for (const metric of plan.names) {
    const idx = items.flatMap((it, k) => (it.metrics.includes(metric) ? [k] : []));
    if (idx.length === 0) continue;
    const groups = ONE_IMAGE_EACH.has(metric) ? idx.map((k) => [k]) : [idx];
    for (const [g, part] of groups.entries()) {
      const task = `${method} ${metric}${groups.length > 1 ? ` (image ${g + 1} of ${groups.length})` : ''}`;
      const onProgress = progress(task);
      const target = part.map((k) => items[k]!.target);
      const set = (values: MapMetrics[keyof MapMetrics][]) => part.forEach((k, j) => Object.assign(out[k]!, { [metric]: values[j] }));
      if (metric === 'pointingGame') {
        const maps = mapsOf(part);
        const [mh, mw] = maps.shape.slice(2) as [number, number];
        // Boxes in the map's pixels (the input's, unless the map is at a layer's resolution).
        const boxes = part.map((k) => items[k]!.boxes!.map(([x1, y1, x2, y2]) => [(x1 * mw) / w, (y1 * mh) / h, (x2 * mw) / w, (y2 * mh) / h] as Box));
        const res = await metrics.pointingGame(maps, boxes, { tolerance: plan.tolerance, kind });
        set(res.images.map((im) => ({ hit: im.hit, point: im.point })));
        continue;
      }
      const x = imagesOf(part);
      try {
        switch (metric) {
          case 'deletion':
          case 'insertion': {
            const res = await metrics[metric](model, x, mapsOf(part), { ...common, target, step: plan.step, onProgress });
            set(res.map((r) => r.auc));
            break;
          }
          case 'road': {
            const res = await metrics.road(model, x, mapsOf(part), { ...common, target, percentages: plan.percentages, seed: plan.seed, onProgress });
            set(res.map((r) => ({ morf: r.morfMean, lerf: r.lerfMean, combined: r.combined })));
            break;
          }
          case 'averageDrop': {
            const res = await metrics.averageDrop(model, x, mapsOf(part), { ...common, target, onProgress });
            set(res.images.map((im) => ({ drop: (100 * Math.max(0, im.y - im.o)) / im.y, y: im.y, o: im.o })));
            break;
          }
          case 'maxSensitivity': {
            const res = await metrics.maxSensitivity(model, method, x, {
              target,
              batchSize: 'auto',
              radius: plan.radius,
              samples: plan.sensitivitySamples,
              seed: plan.seed,
              methodOptions,
              onProgress,
            });
            set(res.values.map((v) => (Number.isFinite(v) ? v : null)));
            break;
          }
          case 'randomisation': {
            const res = await metrics.randomisation(model, method, x, { ...common, target, order: plan.order, seed: plan.seed, methodOptions, onProgress });
            const per = randomisationPerImage(res, part.length);
            set(part.map((_, j) => ({ spearmanAbs: per.spearmanAbs[j]!, ssim: per.ssim[j]! })));
            break;
          }
        }
      } finally {
        x.dispose();
      }
    }
  }
  return out;
}

/** A metric's mean over the images that have it, by field, and how many images that is. */
export type MetricMean = Record<string, number>;

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const field = (v: unknown, key: string): unknown => (typeof v === 'object' && v !== null && Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined);

/**
 * The mean of each metric per method over the `records` that have it (finite values only):
 * deletion, insertion and maxSensitivity as `mean`; road's morf, lerf and combined; Average Drop's
 * `drop` and Increase in Confidence (`increase`, percent of images with O > Y); randomisation's
 * spearmanAbs and ssim; the pointing game's `accuracy` (hits / images). `images` counts the images.
 */
export function metricMeans(records: Iterable<ResultRecord>, methods: readonly string[], names: readonly MetricName[]): Record<string, Partial<Record<MetricName, MetricMean>>> {
  const values = new Map<string, Map<MetricName, unknown[]>>(methods.map((m) => [m, new Map(names.map((n) => [n, []]))]));
  for (const r of records) {
    if (r.status !== 'ok' || typeof r.metrics !== 'object' || r.metrics === null) continue;
    for (const m of methods) {
      const per = field(r.metrics, m);
      for (const n of names) {
        const v = field(per, n);
        if (v !== undefined) values.get(m)!.get(n)!.push(v);
      }
    }
  }
  const mean = (list: unknown[]) => {
    const ok = list.filter(finite);
    return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
  };
  const out: Record<string, Partial<Record<MetricName, MetricMean>>> = Object.create(null) as Record<string, Partial<Record<MetricName, MetricMean>>>;
  for (const m of methods) {
    const per: Partial<Record<MetricName, MetricMean>> = {};
    for (const n of names) {
      const list = values.get(m)!.get(n)!;
      if (list.length === 0) continue;
      const of = (key: string) => mean(list.map((v) => field(v, key)));
      switch (n) {
        case 'deletion':
        case 'insertion':
        case 'maxSensitivity':
          per[n] = { mean: mean(list), images: list.filter(finite).length };
          break;
        case 'road':
          per[n] = { morf: of('morf'), lerf: of('lerf'), combined: of('combined'), images: list.length };
          break;
        case 'averageDrop': {
          const yo = list.map((v) => [field(v, 'y'), field(v, 'o')]).filter(([y, o]) => finite(y) && finite(o)) as [number, number][];
          per[n] = { drop: of('drop'), increase: yo.length ? (100 * yo.filter(([y, o]) => o > y).length) / yo.length : NaN, images: list.length };
          break;
        }
        case 'randomisation':
          per[n] = { spearmanAbs: of('spearmanAbs'), ssim: of('ssim'), images: list.length };
          break;
        case 'pointingGame': {
          const hits = list.map((v) => field(v, 'hit')).filter((v): v is boolean => typeof v === 'boolean');
          per[n] = { accuracy: hits.length ? hits.filter(Boolean).length / hits.length : NaN, images: hits.length };
          break;
        }
      }
    }
    if (Object.keys(per).length) out[m] = per;
  }
  return out;
}

/** One line per method for the run's summary, e.g. `gradCam: deletion 0.123, insertion 0.456, …`. */
export function formatMeans(means: Record<string, Partial<Record<MetricName, MetricMean>>>): string[] {
  const f = (v: number | undefined, digits = 3) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
  return Object.entries(means).map(([method, per]) => {
    const parts: string[] = [];
    if (per.deletion) parts.push(`deletion ${f(per.deletion.mean)} ↓`);
    if (per.insertion) parts.push(`insertion ${f(per.insertion.mean)} ↑`);
    if (per.road) parts.push(`ROAD (LeRF−MoRF)/2 ${f(per.road.combined)} ↑`);
    if (per.averageDrop) parts.push(`Avg Drop ${f(per.averageDrop.drop, 1)} % ↓, Increase ${f(per.averageDrop.increase, 1)} % ↑`);
    if (per.maxSensitivity) parts.push(`max-sensitivity ${f(per.maxSensitivity.mean)} ↓`);
    if (per.randomisation) parts.push(`randomised: Spearman |E| ${f(per.randomisation.spearmanAbs)} ↓, SSIM ${f(per.randomisation.ssim)} ↓`);
    if (per.pointingGame) parts.push(`pointing game ${f(per.pointingGame.accuracy! * 100, 1)} % ↑ (${per.pointingGame.images} images)`);
    return `${method}: ${parts.join('; ')}`;
  });
}
