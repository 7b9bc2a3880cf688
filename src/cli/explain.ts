/** `saliency explain` and `saliency features`: run the methods on an image and write PNG files. */
import { basename, join } from 'node:path';
import cliProgress from 'cli-progress';
import { Tape, noGrad } from '../autodiff/tape.js';
import { ArgumentError } from '../runtime/errors.js';
import { writeNpy } from '../runtime/npy.js';
import { initGpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import type { LoadedModel } from './train.js';
import * as saliency from '../saliency/index.js';
import { resizeRgba, type RgbaImage } from '../saliency/colormaps.js';
import { addColorbarKey, imageToTensorData, readImage, tileImages, writePng } from '../saliency/image.js';
import { cropRgba, inputToRgba } from '../saliency/input.js';
import { renderOverlay } from '../saliency/render.js';
import { CLASSIFIER_METHOD_NAMES, methodByName, runMethod, type ClassifierMethod, type ClassifierMethodName } from '../saliency/methods.js';
import type { MethodTrace } from '../saliency/trace.js';
import { formatTrace, formatTraceComparison } from '../autodiff/trace.js';
import { writeFileAtomic } from '../runtime/files.js';
import { negatedOutput, otherClassName } from '../saliency/sigmoid.js';
import * as ops from '../autodiff/ops/index.js';
import { checkOutputDirectory, gpuOptions, lazyOutputDirectory, outputDirectory } from './output.js';
import { progressLines } from './progress.js';
import { decimal } from './parse.js';
import { loadModelWithArguments, type ModelArguments } from './models.js';
import { loadFashionMnist } from '../nets/idx.js';
import { FASHION_CLASSES } from '../nets/classes.js';

/** The methods `explain` runs: the registry's classifier methods (D-RISE has its own command). */
export const METHODS = CLASSIFIER_METHOD_NAMES;
export type MethodName = ClassifierMethodName;

export interface ExplainOptions extends ModelArguments {
  image: string;
  method: string;
  target: string;
  layer?: string;
  out: string;
  samples: number;
  noiseLevel: number;
  seed: number;
  size: number;
  /** GPU memory budget in MiB (default: initGpu's). */
  memoryBudget?: number;
  /** x,y,width,height of the region to explain (e.g. a face), before resizing. */
  crop?: string;
  /** Also write each raw map as <method>.npy. */
  raw?: boolean;
  /** Print each method's trace as tables and write trace.json. */
  trace?: boolean;
}

/** The model's input [1, C, H, W] from an image file, and the image as the model sees it. */
/** Parses --crop x,y,width,height (pixels of the original image). */
export function parseCrop(crop: string | undefined): [number, number, number, number] | undefined {
  if (crop === undefined) return undefined;
  const v = crop.split(',').map(decimal);
  if (v.length !== 4 || v.some((n) => !Number.isSafeInteger(n) || n < 0) || v[2] === 0 || v[3] === 0) {
    throw new ArgumentError(`--crop must be x,y,width,height in whole pixels, got '${crop}'`);
  }
  return v as [number, number, number, number];
}

/** An image file (or a region of it) as the model's input data, and the same pixels as an RGBA view. */
export function loadInput(model: LoadedModel, path: string, crop?: [number, number, number, number]): { data: Float32Array; view: RgbaImage; image: RgbaImage } {
  if (path === '') throw new ArgumentError('--image must name a PNG or JPEG file');
  const [channels, height, width] = model.inputShape as [number, number, number];
  if (channels !== 1 && channels !== 3) throw new ArgumentError(`model '${model.name}' takes ${channels} input channels; images give 1 or 3`);
  const whole = readImage(path);
  if (crop && (crop[0] + crop[2] > whole.width || crop[1] + crop[3] > whole.height)) {
    throw new ArgumentError(`--crop ${crop.join(',')} reaches outside the image, which is ${whole.width}×${whole.height} pixels`);
  }
  const img = crop ? cropRgba(whole, crop) : whole;
  const data = imageToTensorData(img, { channels, width, height, background: [0, 0, 0] });
  return { data, view: inputToRgba(data, channels, width, height), image: img };
}

function parseMethods(method: string): ClassifierMethod[] {
  if (method === 'all') return METHODS.map((m) => methodByName(m));
  const list = [...new Set(method.split(',').map((m) => m.trim()))];
  return list.map((name) => {
    if (!(METHODS as readonly string[]).includes(name)) {
      if (name === 'drise') throw new ArgumentError("--method drise explains object detectors: use 'saliency drise'");
      throw new ArgumentError(`unknown method '${name}'; methods: ${METHODS.join(', ')}, or all`);
    }
    return methodByName(name as MethodName);
  });
}

function parseTarget(target: string): number | 'top' {
  if (target === 'top') return 'top';
  const n = decimal(target);
  if (!Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`--target must be a class index or 'top', got '${target}'`);
  return n;
}

export async function explainCommand(o: ExplainOptions): Promise<void> {
  const methods = parseMethods(o.method);
  const asked = parseTarget(o.target);
  const crop = parseCrop(o.crop);
  if (o.image === '') throw new ArgumentError('--image must name a PNG or JPEG file');
  checkOutputDirectory('--out', o.out); // before the model is loaded and run
  const gpu = await initGpu(gpuOptions(o.memoryBudget));
  try {
    const { model, classNames } = await loadModelWithArguments(gpu, o);
    const { data, view } = loadInput(model, o.image, crop);
    if (model.outputShape.length !== 1) {
      throw new ArgumentError(`'${o.model}' is not a classifier (its output per image is [${model.outputShape.join(', ')}]); for a detector use 'saliency detect' and 'saliency drise'`);
    }
    // What the model cannot do (CAM's head) and --layer are checked before any method runs, not
    // when their turn comes. With --method all, a method the model cannot do is skipped, and said
    // so after the prediction's line, with the other results.
    const notes: string[] = [];
    for (const m of [...methods]) {
      const reason = m.unsupported(model);
      if (reason === null) continue;
      if (o.method !== 'all') throw new ArgumentError(reason);
      notes.push(`  ${m.name}: skipped (${reason})`);
      methods.splice(methods.indexOf(m), 1);
    }
    for (const m of methods) m.check(model, { layer: o.layer });
    if (o.layer !== undefined && !methods.some((m) => m.options.includes('layer'))) model.layer(o.layer);
    const x = tensor(gpu, data, [1, ...model.inputShape]);
    const out = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const logits = await out.read();
    out.dispose();
    const bad = logits.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new ArgumentError(`model ${model.name} gave non-finite scores for this image (class ${bad}: ${logits[bad]}); its weights or the image are broken`);
    const prediction = describePrediction({ classNames }, logits, asked);
    console.log(`model ${model.name}: ${prediction.text}`);
    for (const note of notes) console.log(note);
    // One sigmoid output explained for its other class: the score is the negated logit.
    const explained = prediction.negate ? negatedOutput(model) : model;

    const traces: MethodTrace[] = [];
    const printedPasses = new Set<string>();
    const tiles: RgbaImage[] = [{ ...view }];
    const labels = [`input: ${prediction.label}`];
    const outDir = lazyOutputDirectory('--out', o.out);
    for (const method of methods) {
      const t0 = performance.now();
      // A bar on a terminal (on stdout: stderr may be a pipe, see quiet.ts), else progress lines.
      const bar = process.stdout.isTTY && method.progressUnit
        ? new cliProgress.SingleBar({ format: `  ${method.name} [{bar}] {value}/{total} ${method.progressUnit}, ETA {eta_formatted}`, stream: process.stdout }, cliProgress.Presets.shades_classic)
        : null;
      const lines = method.progressUnit ? progressLines({ label: `  ${method.name}:`, unit: method.progressUnit.replace(/s$/, ''), units: method.progressUnit }) : null;
      let started = false;
      let raw: Tensor;
      try {
        const ran = await runMethod(method.name, explained, x, {
          trace: !!o.trace,
          target: prediction.index,
          layer: o.layer,
          samples: o.samples,
          noiseLevel: o.noiseLevel,
          seed: o.seed,
          onProgress: (done, total) => {
            if (bar) {
              if (!started) bar.start(total, 0);
              started = true;
              bar.update(done);
            } else lines?.(done, total);
          },
        });
        if ('trace' in ran) {
          traces.push(ran.trace);
          raw = ran.result;
        } else raw = ran;
        // CAM weighs the linear layer's weights without a backward pass: the other class's map is
        // the negated map (CAM has no ReLU).
        if (method.name === 'cam' && prediction.negate) {
          const own = raw;
          raw = await noGrad(gpu, () => ops.neg(own));
          own.dispose();
        }
      } finally {
        bar?.stop();
      }
      const map = { data: await raw.read(), shape: raw.shape };
      raw.dispose();
      const ms = performance.now() - t0;
      const image = renderOverlay(map, view, { size: o.size, kind: method.display });
      const file = join(outDir(), `${method.name}.png`);
      writePng(file, figure([image], [`${method.name}: ${prediction.label}`], o.size));
      const rawFile = join(outDir(), `${method.name}.npy`);
      if (o.raw) writeNpy(rawFile, map.data, map.shape);
      console.log(`  ${method.name.padEnd(15)} ${ms.toFixed(0).padStart(6)} ms  → ${file}${o.raw ? `, ${basename(rawFile)}` : ''}`);
      tiles.push(image);
      labels.push(method.name);
      if (o.trace) printTrace(traces[traces.length - 1]!, printedPasses);
    }
    tiles[0] = resizeRgba(view, o.size, o.size, 'bilinear');
    const file = join(outDir(), 'overview.png');
    writePng(file, figure(tiles, labels, o.size));
    console.log(`overview → ${file}`);
    if (o.trace) {
      printComparison(traces);
      const json = join(outDir(), 'trace.json');
      writeFileAtomic(json, JSON.stringify({ model: model.name, image: o.image, target: prediction.index, negated: prediction.negate, methods: traces }, null, 1) + '\n');
      console.log(`trace → ${json}`);
    }
    x.dispose();
    model.dispose();
  } finally {
    gpu.destroy();
  }
}

/** Each pass of a method's trace as a table; a forward pass printed just before is not repeated. */
function printTrace(trace: MethodTrace, printed: Set<string>): void {
  for (const pass of trace.passes) {
    const key = pass.pass === 'forward' ? JSON.stringify(pass.toJSON().entries) : null;
    if (key !== null && printed.has(key)) {
      console.log(`  (${trace.method}'s forward pass: as printed above)`);
      continue;
    }
    if (key !== null) printed.add(key);
    console.log(`\n${trace.method}, ${formatTrace(pass)}\n`);
  }
}

/**
 * The ReLU rules side by side: for the methods run whose one backward pass reaches the input with
 * a ReLU rule of their own (vanilla: ordinary, guidedBackprop: guided, deconvnet: deconv), the share
 * of zeros right after each ReLU. Where the columns part is where the methods part.
 */
function printComparison(traces: MethodTrace[]): void {
  const byRule = new Map<string, { label: string; trace: NonNullable<MethodTrace['passes'][number]> }>();
  for (const t of traces) {
    const rule = methodByName(t.method as MethodName).reluRule;
    const backward = t.backward;
    if (!rule || backward.length !== 1 || byRule.has(rule)) continue;
    byRule.set(rule, { label: t.method, trace: backward[0]! });
  }
  if (byRule.size >= 2) {
    console.log('\nThe ReLU rules side by side: share of zeros in the gradient reaching each ReLU → right after its rule');
    console.log(formatTraceComparison([...byRule.values()]));
  } else {
    console.log('\n(run --trace with --method vanilla,guidedBackprop,deconvnet to see the ReLU rules side by side)');
  }
}

export interface Prediction {
  /** The line after "model <name>: ". */
  text: string;
  /** The class explained, for the overview's label. */
  label: string;
  /** The output index whose score is explained. */
  index: number;
  /** True when a one-output model is explained for its other class (score: −logit). */
  negate: boolean;
}

/**
 * What the model predicts and which score is explained. A classifier with K > 1 outputs: softmax
 * probabilities, target = a class index. One sigmoid output p = σ(z) is two classes: 0 is the
 * output's own class (score z), 1 the other one (probability 1 − p, score −z, the logit of 1 − p);
 * 'top' is the side with p ≥ 0.5 or below it.
 */
export function describePrediction(model: { classNames?: readonly string[] | undefined }, logits: Float32Array, asked: number | 'top'): Prediction {
  const className = (c: number) => model.classNames?.[c] ?? `class ${c}`;
  if (logits.length === 1) {
    const p = 1 / (1 + Math.exp(-logits[0]!));
    const yes = className(0);
    const no = otherClassName(yes);
    const side = asked === 'top' ? (p >= 0.5 ? 0 : 1) : asked;
    if (side > 1) throw new ArgumentError(`--target ${side} is out of range; the model has one sigmoid output: 0 (${yes}) or 1 (${no})`);
    const predicted = p >= 0.5 ? yes : no;
    const score = side === 0 ? `the logit of ${yes}` : `the negated logit of ${yes}, i.e. the logit of ${no}`;
    return {
      text: `${yes} ${(p * 100).toFixed(1)}% → ${predicted}; explaining ${side === 0 ? yes : no} (target ${side}; score: ${score})`,
      label: side === 0 ? yes : no,
      index: 0,
      negate: side === 1,
    };
  }
  const probs = softmax(logits);
  const top = probs.indexOf(Math.max(...probs));
  const target = asked === 'top' ? top : asked;
  if (target >= logits.length) throw new ArgumentError(`--target ${target} is out of range; the model has ${logits.length} classes (0..${logits.length - 1})`);
  return { text: `predicted ${className(top)} (${(probs[top]! * 100).toFixed(1)}%); explaining ${className(target)}`, label: className(target), index: target, negate: false };
}

/** Pictures side by side with their labels, and the colour map's key under them (one `size` wide). */
export function figure(images: RgbaImage[], labels: string[], size: number): RgbaImage {
  const grid = tileImages(images, { columns: Math.min(images.length, 5), labels, gap: FIGURE_GAP });
  const barWidth = Math.min(size, grid.width - 2 * FIGURE_GAP);
  return barWidth >= 8 ? addColorbarKey(grid, { width: barWidth, gap: FIGURE_GAP }) : grid; // no room for a key on tiny pictures
}

/** Pixels around and between a figure's pictures: an overlay sits at (FIGURE_GAP, FIGURE_GAP). */
export const FIGURE_GAP = 6;

function softmax(v: Float32Array): number[] {
  const m = Math.max(...v);
  const e = [...v].map((z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((z) => z / s);
}

export interface FeaturesOptions extends ModelArguments {
  image: string;
  layer: string;
  top: number;
  out: string;
  size: number;
}

/**
 * The classic DeconvNet picture (Zeiler & Fergus): the `top` most active feature maps of a layer
 * for this image, each projected back to pixel space from its strongest activation.
 */
export async function featuresCommand(o: FeaturesOptions): Promise<void> {
  checkOutputDirectory('--out', o.out); // before the model is loaded and run
  const gpu = await initGpu();
  try {
    const { model } = await loadModelWithArguments(gpu, o);
    const layer = model.layer(o.layer);
    if (layer.outputShape.length !== 3) throw new ArgumentError(`--layer ${o.layer} has no feature maps (output ${JSON.stringify(layer.outputShape)}); choose a conv, activation or pooling layer`);
    const { data, view } = loadInput(model, o.image);
    const x = tensor(gpu, data, [1, ...model.inputShape]);
    const tape = new Tape(gpu);
    tape.hook(o.layer);
    await tape.run(() => model.forward(x)).then((y) => y.dispose());
    const a = await tape.activation(o.layer).read();
    tape.dispose();
    const [channels] = layer.outputShape as [number];
    const plane = a.length / channels;
    const strength = Array.from({ length: channels }, (_, c) => ({ c, max: Math.max(...a.subarray(c * plane, (c + 1) * plane)) }));
    strength.sort((p, q) => q.max - p.max);
    const chosen = strength.slice(0, Math.min(o.top, channels));
    // Graph models name layers like 'model/block1/Relu': one file name, without directories.
    const file = join(outputDirectory('--out', o.out), `features-${o.layer.replace(/[^\w.-]+/g, '_')}.png`);
    const tiles: RgbaImage[] = [];
    const labels: string[] = [];
    for (const { c, max } of chosen) {
      const raw = await saliency.deconvnet(model, x, { target: { layer: o.layer, channel: c } });
      tiles.push(renderOverlay({ data: await raw.read(), shape: [...raw.shape] }, view, { size: o.size, opacity: 0.85 }));
      labels.push(`#${c} ${max.toFixed(2)}`);
      raw.dispose();
    }
    writePng(file, tileImages(tiles, { columns: Math.ceil(Math.sqrt(tiles.length)), labels, gap: 6 }));
    console.log(`${o.layer}: the ${chosen.length} most active of ${channels} feature maps, projected to pixels → ${file}`);
    x.dispose();
    model.dispose();
  } finally {
    gpu.destroy();
  }
}

export interface SampleCommandOptions {
  index: number;
  out: string;
}

/**
 * `saliency sample`: writes Fashion-MNIST test image `index` (from the Debian package
 * dataset-fashion-mnist) as a 28×28 grey PNG and prints its class, so that `explain` can be tried
 * on the bundled models with an image whose answer is known.
 */
export function sampleCommand(o: SampleCommandOptions): void {
  const test = loadFashionMnist('test');
  if (o.index >= test.count) throw new ArgumentError(`--index ${o.index} is out of range; the test set has ${test.count} images (0..${test.count - 1})`);
  const pixels = test.images.subarray(o.index * 784, (o.index + 1) * 784);
  const file = join(outputDirectory('--out', o.out), `fashion-${o.index}.png`);
  writePng(file, inputToRgba(pixels, 1, 28, 28));
  console.log(`Fashion-MNIST test image ${o.index}: ${FASHION_CLASSES[test.labels[o.index]!]} (class ${test.labels[o.index]}) → ${file}`);
}
