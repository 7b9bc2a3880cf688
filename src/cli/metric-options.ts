/**
 * What `saliency metrics` and `saliency batch --metric` share: the metric names, the metrics'
 * options (the same flags, defaults and checks in both commands), boxes for the pointing game, and
 * randomisation's result per image.
 */
import type { Command } from 'commander';
import { ArgumentError } from '../runtime/errors.js';
import type { Box } from '../saliency/display.js';
import type { RandomisationResult } from '../saliency/metrics/index.js';
import { decimal, nonNegativeArg, positiveIntArg } from './parse.js';

export const METRIC_NAMES = ['deletion', 'insertion', 'road', 'averageDrop', 'maxSensitivity', 'randomisation', 'pointingGame'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/**
 * What `--metric all` means in `saliency batch`: every metric of an image's map, the pointing game
 * for the images with a box. Not randomisation: it checks the model rather than a map, and re-runs
 * each method once per layer of the model; name it to have it.
 */
export const BATCH_ALL_METRICS: readonly MetricName[] = METRIC_NAMES.filter((m) => m !== 'randomisation');

/** The metrics' own options, as both commands take them (commander's camelCase names). */
export interface MetricFlags {
  step?: number;
  percentages?: string;
  radius: number;
  sensitivitySamples: number;
  order: string;
  box?: string;
  tolerance: number;
}

/**
 * Adds the metrics' options (--step, --percentages, --radius, --sensitivity-samples, --order,
 * --box, --tolerance) to a command; `boxHelp` says what --box means there.
 */
export function addMetricOptions(command: Command, boxHelp: string): Command {
  return command
    .option('--step <n>', 'deletion, insertion: pixels changed per step (default: the image width, one row)', positiveIntArg('--step'))
    .option('--percentages <list>', 'ROAD: percentages of pixels removed, comma-separated, each in (0, 100) (default 10,20,…,90)')
    .option('--radius <r>', 'max-sensitivity: perturbations uniform in [−r, r], in input units', nonNegativeArg('--radius'), 0.02)
    .option('--sensitivity-samples <n>', 'max-sensitivity: perturbed copies per image', positiveIntArg('--sensitivity-samples'), 10)
    .option('--order <cascading|independent>', 'randomisation: re-initialise layers from the top down, cumulatively, or one at a time', 'cascading')
    .option('--box <x1,y1,x2,y2|auto>', boxHelp)
    .option('--tolerance <px>', 'pointing game: grow the box by this many pixels on every side', nonNegativeArg('--tolerance'), 0);
}

/**
 * The names of a comma-separated list, each one of `valid`; `all` (alone or in the list) stands for
 * `all` (default: every valid name), in the order given. An unknown name is a one-line error listing the valid ones.
 */
export function parseList<T extends string>(what: string, text: string, valid: readonly T[], all: readonly T[] = valid): T[] {
  const list = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
  if (list.length === 0) throw new ArgumentError(`${what} is empty; give names from ${valid.join(', ')}, or all`);
  for (const m of list) if (m !== 'all' && !(valid as readonly string[]).includes(m)) throw new ArgumentError(`unknown ${what.replace(/^--/, '')} '${m}'; choose from ${valid.join(', ')}, or all`);
  return [...new Set(list.flatMap((m) => (m === 'all' ? all : [m as T])))]; // in the order given
}

export function parsePercentages(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const v = text.split(',').map((s) => decimal(s));
  if (v.length === 0 || v.some((p) => !(p > 0 && p < 100))) throw new ArgumentError(`--percentages must be numbers in (0, 100) separated by commas, got '${text}'`);
  return v;
}

/** --box x1,y1,x2,y2 (model-input pixels, edges) or 'auto'. */
export function parseBox(text: string | undefined): Box | 'auto' | undefined {
  if (text === undefined || text === 'auto') return text;
  const v = text.split(',').map(decimal);
  if (v.length !== 4 || v.some((n) => !Number.isFinite(n)) || v[2]! <= v[0]! || v[3]! <= v[1]!) {
    throw new ArgumentError(`--box must be x1,y1,x2,y2 with x2 > x1 and y2 > y1 (pixels of the model input), or auto; got '${text}'`);
  }
  return v as Box;
}

/** --order: 'cascading' or 'independent'. */
export function parseOrder(text: string): 'cascading' | 'independent' {
  if (text !== 'cascading' && text !== 'independent') throw new ArgumentError(`--order must be cascading or independent, got '${text}'`);
  return text;
}

/** --step against the model input's pixels (checked once the model is loaded). */
export function checkStep(step: number | undefined, h: number, w: number): void {
  if (step !== undefined && step > h * w) throw new ArgumentError(`--step must be at most H·W = ${h * w} (the model input's pixels), got ${step}`);
}

/** The bounding box of the pixels that are not 0 in any channel (the object on a black background). */
export function contentBox(data: Float32Array, c: number, h: number, w: number): Box {
  let [x1, y1, x2, y2] = [w, h, 0, 0];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let on = false;
      for (let k = 0; k < c && !on; k++) on = data[(k * h + y) * w + x] !== 0;
      if (!on) continue;
      [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
    }
  }
  return x2 > x1 ? [x1, y1, x2, y2] : [0, 0, w, h];
}

/**
 * Each image's randomisation result as one pair of numbers: cascading, at full randomisation (the
 * last step); independent, the mean over the layers.
 */
export function randomisationPerImage(res: RandomisationResult, n: number): { spearmanAbs: number[]; ssim: number[] } {
  const tail = res.order === 'cascading' ? [res.steps.at(-1)!] : res.steps.slice(1);
  const perImage = (key: 'spearmanAbs' | 'ssim') => Array.from({ length: n }, (_, i) => tail.reduce((a, s) => a + s[key][i]!, 0) / tail.length);
  return { spearmanAbs: perImage('spearmanAbs'), ssim: perImage('ssim') };
}
