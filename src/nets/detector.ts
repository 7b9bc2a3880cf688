/**
 * A small one-stage detector in the style of YOLO: the image is divided into a grid of cells; each
 * cell predicts an objectness, one box and class probabilities. Built from our layers and trained
 * with our autodiff on synthetic Fashion-MNIST scenes (scenes.ts).
 *
 * Output [N, 5 + C, g, g] per cell (stride = input / g):
 *   0: objectness logit            1, 2: box centre offset in the cell (sigmoid)
 *   3, 4: box width and height as a fraction of the image (sigmoid)   5…: class logits
 */
import * as ops from '../autodiff/ops/index.js';
import { noGrad, Tape } from '../autodiff/tape.js';
import { formatDuration, remainingSeconds } from '../runtime/progress.js';
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import type { Detection } from './types.js';
import { meanAveragePrecision, nms, type ScoredBox } from './boxes.js';
import type { Model } from './model.js';
import type { Optimizer } from './optim.js';
import { generateScene, type Scene, type SceneOptions, type SceneSource } from './scenes.js';

export { FASHION_DETECTOR } from './detector-spec.js';

/** Seed of the held-out scenes the detector is measured on (made from the test images). */
export const DETECTOR_TEST_SEED = 20261126;

/** Held-out scene `index` (of 500 in the documented mAP) made from the Fashion-MNIST test images. */
export function heldOutScene(testImages: SceneSource, index: number): Scene {
  return generateScene(testImages, DETECTOR_TEST_SEED, index);
}

export interface DetectorGeometry {
  size: number;
  grid: number;
  classes: number;
}

export function detectorGeometry(model: Model): DetectorGeometry {
  const [c, g, g2] = model.outputShape as number[];
  const size = model.inputShape[1]!;
  if (model.outputShape.length !== 3 || g !== g2 || c! < 6) {
    throw new ShapeError(`detector: model output per image must be [5 + classes, g, g], got ${formatShape(model.outputShape)}`);
  }
  return { size, grid: g!, classes: c! - 5 };
}

/**
 * Training targets for a batch of scenes, laid out like the output. Each object belongs to the
 * cell holding its box centre (larger objects claim a cell first): that cell's objectness is 1
 * and its box terms are the object's. The class is taught more widely, as in FCOS's centre
 * sampling: the centre cell and those of its 8 neighbours whose centres lie inside the box (and
 * that no other object's centre claimed) learn the object's class, which gives the class head
 * several shifted views of each item instead of one. An object whose centre cell a larger one
 * took has no objectness target, but still teaches its class to the free cells around it.
 */
function targets(scenes: Scene[], geo: DetectorGeometry) {
  const { grid: g, size, classes } = geo;
  const n = scenes.length;
  const cells = g * g;
  const stride = size / g;
  const obj = new Float32Array(n * cells);
  const box = new Float32Array(n * 4 * cells);
  const cls = new Float32Array(n * classes * cells);
  scenes.forEach((s, b) => {
    const taught = new Uint8Array(cells); // cells that already have a class target
    const order = s.boxes.map((_, i) => i).sort((i, j) => area(s.boxes[j]!) - area(s.boxes[i]!));
    const centres: [number, number][] = [];
    for (const k of order) {
      const [x1, y1, x2, y2] = s.boxes[k]!;
      const cx = (x1 + x2) / 2;
      const cy = (y1 + y2) / 2;
      const i = Math.min(g - 1, Math.floor(cy / stride));
      const j = Math.min(g - 1, Math.floor(cx / stride));
      centres.push([i, j]);
      const cell = i * g + j;
      if (obj[b * cells + cell]) continue;
      obj[b * cells + cell] = 1;
      taught[cell] = 1;
      const t = [cx / stride - j, cy / stride - i, (x2 - x1) / size, (y2 - y1) / size];
      t.forEach((v, ch) => (box[(b * 4 + ch) * cells + cell] = v));
      cls[(b * classes + s.labels[k]!) * cells + cell] = 1;
    }
    order.forEach((k, o) => {
      const [x1, y1, x2, y2] = s.boxes[k]!;
      const [i, j] = centres[o]!;
      for (let di = -1; di <= 1; di++) {
        for (let dj = -1; dj <= 1; dj++) {
          const [ii, jj] = [i + di, j + dj];
          if (ii < 0 || jj < 0 || ii >= g || jj >= g || taught[ii * g + jj]) continue;
          const [px, py] = [(jj + 0.5) * stride, (ii + 0.5) * stride];
          if (px < x1 || px >= x2 || py < y1 || py >= y2) continue;
          taught[ii * g + jj] = 1;
          cls[(b * classes + s.labels[k]!) * cells + ii * g + jj] = 1;
        }
      }
    });
  });
  return { obj, box, cls };
}

function area(b: readonly number[]): number {
  return (b[2]! - b[0]!) * (b[3]! - b[1]!);
}

export interface DetectionLossWeights {
  /** Weight of positive cells in the objectness loss (default 5: few cells hold objects). */
  positive?: number;
  /** Weight of the box loss (default 2). */
  box?: number;
}

/**
 * The detection loss, differentiable, each term averaged over the batch:
 * - objectness: binary cross-entropy over all cells, positive cells weighted;
 * - box: squared error on the object's cell, in units of cells: the centre offsets are in cells
 *   already, and the width and height (fractions of the image) are scaled by the grid size, so
 *   that a pixel of error in the size costs what a pixel in the centre does;
 * - class: cross-entropy on the cells that `targets` teaches a class.
 */
export async function detectionLoss(out: Tensor, scenes: Scene[], geo: DetectorGeometry, w: DetectionLossWeights = {}): Promise<Tensor> {
  const gpu = out.gpu;
  const [n] = out.shape as [number];
  const { grid: g, classes } = geo;
  const t = targets(scenes, geo);
  const lamPos = w.positive ?? 5;
  const lamBox = w.box ?? 2;
  return gpu.scope(async () => {
    const z = await ops.slice(out, [0, 0, 0, 0], [n, 1, g, g]);
    // log σ(z) and log(1 − σ(z)) as the log-softmax of (z, 0).
    const pair = await ops.logSoftmax(await ops.concat([z, tensor(gpu, new Float32Array(n * g * g), [n, 1, g, g])], 1), 1);
    const objWeights = new Float32Array(n * 2 * g * g);
    const cells = g * g;
    for (let b = 0; b < n; b++) {
      for (let c = 0; c < cells; c++) {
        const y = t.obj[b * cells + c]!;
        objWeights[(b * 2) * cells + c] = (-lamPos * y) / n;
        objWeights[(b * 2 + 1) * cells + c] = (-(1 - y)) / n;
      }
    }
    const objLoss = await ops.sum(await ops.mul(pair, tensor(gpu, objWeights, [n, 2, g, g])), 'all');

    // Per box channel: 1 on the object's cell, times the grid size for width and height.
    const boxScale = new Float32Array(n * 4 * cells);
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < 4; ch++) {
        for (let c = 0; c < cells; c++) boxScale[(b * 4 + ch) * cells + c] = t.obj[b * cells + c]! * (ch < 2 ? 1 : g);
      }
    }
    const pred = await ops.activation(await ops.slice(out, [0, 1, 0, 0], [n, 4, g, g]), 'sigmoid');
    const diff = await ops.mul(await ops.sub(pred, tensor(gpu, t.box, [n, 4, g, g])), tensor(gpu, boxScale, [n, 4, g, g]));
    const boxLoss = await ops.scale(await ops.sum(await ops.mul(diff, diff), 'all'), lamBox / n);

    const logp = await ops.logSoftmax(await ops.slice(out, [0, 5, 0, 0], [n, classes, g, g]), 1);
    const clsWeights = Float32Array.from(t.cls, (v) => -v / n);
    const clsLoss = await ops.sum(await ops.mul(logp, tensor(gpu, clsWeights, [n, classes, g, g])), 'all');
    return ops.add(await ops.add(objLoss, boxLoss), clsLoss);
  });
}

export interface DetectOptions {
  /** Keep cells with objectness above this (default 0.3). */
  threshold?: number;
  /** Non-maximum suppression IoU (default 0.45). */
  iou?: number;
}

/** Decodes the output of a batch into detections per image (after NMS), in input pixels. */
export function decodeDetections(values: Float32Array, n: number, geo: DetectorGeometry, options: DetectOptions = {}): Detection[][] {
  const { grid: g, size, classes } = geo;
  const { threshold = 0.3, iou = 0.45 } = options;
  const cells = g * g;
  const per = (5 + classes) * cells;
  const stride = size / g;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const result: Detection[][] = [];
  for (let b = 0; b < n; b++) {
    const found: Detection[] = [];
    for (let c = 0; c < cells; c++) {
      const at = (ch: number) => values[b * per + ch * cells + c]!;
      const objectness = sig(at(0));
      if (objectness < threshold) continue;
      const [i, j] = [Math.floor(c / g), c % g];
      const cx = (j + sig(at(1))) * stride;
      const cy = (i + sig(at(2))) * stride;
      const w = sig(at(3)) * size;
      const h = sig(at(4)) * size;
      const logits = Array.from({ length: classes }, (_, k) => at(5 + k));
      const m = Math.max(...logits);
      const e = logits.map((v) => Math.exp(v - m));
      const s = e.reduce((a, v) => a + v, 0);
      found.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], objectness, scores: e.map((v) => v / s) });
    }
    const keep = nms(found.map((d) => d.box), found.map((d) => d.objectness! * Math.max(...d.scores)), iou);
    result.push(keep.map((k) => found[k]!));
  }
  return result;
}

/** Runs the detector on images [B, 1, size, size]: detections per image, in D-RISE's format. */
export async function detect(model: Model, images: Tensor, options: DetectOptions = {}): Promise<Detection[][]> {
  const geo = detectorGeometry(model);
  const out = await noGrad(model.gpu, () => model.forward(images));
  try {
    return decodeDetections(await out.read(), images.shape[0]!, geo, options);
  } finally {
    out.dispose();
  }
}

/**
 * The predictions mAP is computed from, for one image's detections. `'all'`: each box is a
 * prediction for every class, scored objectness × p(class), the way Darknet writes YOLO's
 * detections for the PASCAL VOC evaluation (a box whose top class is wrong can still count for its
 * second). `'top1'` is stricter: each box counts only for its most probable class.
 */
export function scoredBoxes(detections: readonly Detection[], mode: 'all' | 'top1' = 'all'): ScoredBox[] {
  return detections.flatMap((d) => {
    const objectness = d.objectness ?? 1;
    if (mode === 'all') return d.scores.map((p, label) => ({ box: d.box, label, score: objectness * p }));
    const label = d.scores.indexOf(Math.max(...d.scores));
    return [{ box: d.box, label, score: objectness * d.scores[label]! }];
  });
}

export interface DetectorScore {
  /** mAP@0.5, every box scored for every class (Darknet's VOC submission; see scoredBoxes). */
  map: number;
  /** mAP@0.5 with each box counted for its most probable class only. */
  top1Map: number;
  /** AP per class (the `map` protocol). */
  perClass: Map<number, number>;
}

/** mAP@0.5 of the detector on scenes (boxes with objectness ≥ 0.05, after NMS). */
export async function evaluateDetector(model: Model, scenes: Scene[], batchSize = 32): Promise<DetectorScore> {
  const geo = detectorGeometry(model);
  const detections: Detection[][] = [];
  for (let i = 0; i < scenes.length; i += batchSize) {
    const batch = scenes.slice(i, i + batchSize);
    const x = sceneBatch(model, batch, geo);
    detections.push(...(await detect(model, x, { threshold: 0.05 })));
    x.dispose();
  }
  const all = meanAveragePrecision(detections.map((d) => scoredBoxes(d, 'all')), scenes, 0.5);
  const top1 = meanAveragePrecision(detections.map((d) => scoredBoxes(d, 'top1')), scenes, 0.5);
  return { map: all.map, top1Map: top1.map, perClass: all.perClass };
}

function sceneBatch(model: Model, scenes: Scene[], geo: DetectorGeometry): Tensor {
  const px = geo.size * geo.size;
  const data = new Float32Array(scenes.length * px);
  scenes.forEach((s, i) => data.set(s.image, i * px));
  return tensor(model.gpu, data, [scenes.length, 1, geo.size, geo.size]);
}

export interface TrainDetectorOptions {
  source: SceneSource;
  /** Scenes per epoch (default 20,000), generated on the fly from `seed`. */
  scenes?: number;
  epochs: number;
  /** Epochs already done (a resumed run): training continues the scene stream after them. */
  startEpoch?: number;
  batchSize?: number;
  optimizer: Optimizer;
  seed?: number;
  sceneOptions?: SceneOptions;
  /** Layers whose parameters stay as they are (e.g. convolutions taken from fashion-vgg). */
  frozen?: readonly string[];
  log?: (line: string) => void;
  onEpochEnd?: (epoch: number) => void | Promise<void>;
}

/** Trains the detector; returns the loss of every step. */
export async function trainDetector(model: Model, o: TrainDetectorOptions): Promise<number[]> {
  const geo = detectorGeometry(model);
  const { scenes: perEpoch = 20000, epochs, startEpoch = 0, batchSize = 32, optimizer, seed = 0, log } = o;
  if (!Number.isInteger(epochs) || epochs < 1) throw new ArgumentError(`trainDetector: epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(startEpoch) || startEpoch < 0 || startEpoch >= epochs) {
    throw new ArgumentError(`trainDetector: startEpoch must be an integer in [0, epochs), got ${startEpoch}`);
  }
  const params = model.parameters({ frozen: o.frozen });
  if (params.length === 0) throw new ArgumentError('trainDetector: every layer is frozen; nothing to train');
  const losses: number[] = [];
  const steps = Math.ceil(perEpoch / batchSize);
  for (let epoch = startEpoch; epoch < epochs; epoch++) {
    const t0 = performance.now();
    for (let step = 0; step < steps; step++) {
      const first = epoch * perEpoch + step * batchSize;
      const batch = Array.from({ length: Math.min(batchSize, perEpoch - step * batchSize) }, (_, k) => generateScene(o.source, seed, first + k, o.sceneOptions));
      const loss = await model.gpu.scope(async () => {
        const x = sceneBatch(model, batch, geo);
        const tape = new Tape(model.gpu);
        try {
          for (const p of params) tape.watch(p);
          const l = await tape.run(async () => detectionLoss(await model.forward(x, { training: true }), batch, geo));
          const grads = await tape.backward(l);
          tape.dispose();
          await optimizer.step(params, grads);
          grads.dispose();
          return (await l.read())[0]!;
        } finally {
          tape.dispose();
        }
      });
      if (!Number.isFinite(loss)) throw new ArgumentError(`trainDetector: the loss became ${loss} at epoch ${epoch + 1}, step ${step + 1}; lower the learning rate`);
      losses.push(loss);
      if (log && ((step + 1) % Math.max(1, Math.round(steps / 10)) === 0 || step === steps - 1)) {
        const seconds = (performance.now() - t0) / 1000;
        const eta = step === steps - 1 ? '' : `  epoch ETA ${formatDuration(remainingSeconds(step + 1, steps, seconds))}`;
        log(`epoch ${epoch + 1}/${epochs}  step ${step + 1}/${steps}  loss ${loss.toFixed(4)}  ${(((step + 1) * batchSize) / seconds).toFixed(0)} scenes/s${eta}`);
      }
    }
    await o.onEpochEnd?.(epoch + 1);
  }
  return losses;
}
