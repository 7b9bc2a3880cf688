/**
 * Training and evaluation of a `Trainable` model on our own kernels and autodiff.
 *
 * One step: record forward and loss on a fresh tape, back-propagate to the parameters, let the
 * optimizer update them in place, and free everything the step made (a gpu.scope). The loss is
 * read back one step late: its copy is submitted with the step and awaited after the next step
 * has been recorded, so the GPU never waits for the CPU to ask.
 */
import { logSoftmax, mul, sum } from '../autodiff/ops/index.js';
import { Tape, noGrad, type Gradients } from '../autodiff/tape.js';
import { formatDuration, remainingSeconds } from '../runtime/progress.js';
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import type { DataLoader } from './data.js';
import type { Optimizer } from './optim.js';
import type { Trainable } from './types.js';

/**
 * Mean cross-entropy of `logits` [N, K] against integer `labels` (N values in 0..K−1):
 * L = −(1/N) Σ_n log softmax(logits_n)[label_n]. Differentiable; returns a tensor of shape [].
 *
 * Composed of ops (logSoftmax, a product with the constant −onehot/N, a sum), so its gradient,
 * (softmax − onehot)/N, comes from their backward rules.
 */
export async function crossEntropy(logits: Tensor, labels: ArrayLike<number>): Promise<Tensor> {
  if (logits.rank !== 2) throw new ShapeError(`crossEntropy: logits must be [N, classes], got ${formatShape(logits.shape)}`);
  const [n, k] = logits.shape as [number, number];
  if (labels.length !== n) throw new ShapeError(`crossEntropy: ${labels.length} labels for ${n} rows of logits ${formatShape(logits.shape)}`);
  const weights = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= k) {
      throw new ArgumentError(`crossEntropy: label ${c} at index ${i} is not a class index in 0..${k - 1}`);
    }
    weights[i * k + c] = -1 / n;
  }
  const gpu = logits.gpu;
  const temps: Tensor[] = [];
  try {
    const logp = await logSoftmax(logits, -1);
    temps.push(logp);
    const w = tensor(gpu, weights, [n, k]);
    temps.push(w);
    const picked = await mul(logp, w);
    temps.push(picked);
    return await sum(picked, 'all');
  } finally {
    for (const t of temps) t.dispose(); // the tape retains what the backward rules saved
  }
}

export interface TrainProgress {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** 1-based step within the epoch. */
  step: number;
  steps: number;
  /** This step's loss. */
  loss: number;
  /** Mean loss of the epoch so far. */
  runningLoss: number;
  /** Throughput since the previous progress report. */
  imagesPerSecond: number;
  /** Seconds since training started. */
  seconds: number;
}

export interface EpochSummary {
  /** 1-based. */
  epoch: number;
  meanLoss: number;
  steps: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface TrainOptions {
  epochs: number;
  optimizer: Optimizer;
  /** Called after every step. */
  onProgress?: (p: TrainProgress) => void;
  /** Receives human-readable progress lines (every `logEvery` steps and at each epoch's end). */
  log?: (line: string) => void;
  /** Steps between log lines. Default: a tenth of an epoch, at least 1. */
  logEvery?: number;
  /** Called after each epoch (e.g. to evaluate, or to change `optimizer.lr`); awaited. */
  onEpochEnd?: (summary: EpochSummary) => void | Promise<void>;
  /** Checked before each step: once aborted, training stops and the history is returned with `stopped: true`. */
  signal?: AbortSignal;
  /** First epoch (0-based) for a resumed run: the loader shuffles as the uninterrupted run did. Default 0. */
  startEpoch?: number;
  /** Layers whose parameters stay as they are (transfer learning); no gradient is computed for them. */
  frozen?: readonly string[];
}

export interface TrainHistory {
  /** Loss of every step, in order. */
  losses: number[];
  epochs: EpochSummary[];
  stopped: boolean;
}

/** Trains `model` on `loader`'s batches with cross-entropy. Returns the loss history. */
export async function train(model: Trainable, loader: DataLoader, options: TrainOptions): Promise<TrainHistory> {
  const { epochs, optimizer, onProgress, log, onEpochEnd, signal, startEpoch = 0 } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new ArgumentError(`train: epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(startEpoch) || startEpoch < 0 || startEpoch >= epochs) {
    throw new ArgumentError(`train: startEpoch must be an integer in 0..${epochs - 1}, got ${startEpoch}`);
  }
  if (!optimizer || typeof optimizer.step !== 'function') throw new ArgumentError('train: options.optimizer is required (new SGD({ lr }) or new Adam())');
  const steps = loader.length;
  const logEvery = options.logEvery ?? Math.max(1, Math.round(steps / 10));
  if (!Number.isInteger(logEvery) || logEvery < 1) throw new ArgumentError(`train: logEvery must be a positive integer, got ${logEvery}`);
  const params = model.parameters({ frozen: options.frozen });
  if (options.frozen?.length && params.length === model.parameters().length) {
    throw new ArgumentError('train: this model does not support frozen layers (its parameters() ignores them)');
  }
  if (params.length === 0) throw new ArgumentError(options.frozen?.length ? 'train: every layer is frozen; nothing to train' : 'train: the model has no parameters');

  const history: TrainHistory = { losses: [], epochs: [], stopped: false };
  const t0 = now();

  for (let epoch = startEpoch; epoch < epochs && !history.stopped; epoch++) {
    if (signal?.aborted) {
      history.stopped = true;
      break;
    }
    const epochStart = now();
    let epochLoss = 0;
    let epochSteps = 0;
    let epochImages = 0;
    let windowStart = epochStart;
    let windowImages = 0;
    // The previous step's loss read, still in flight, and what to report with it.
    let pending: { value: Promise<number>; step: number; images: number } | null = null;

    const report = async (p: NonNullable<typeof pending>): Promise<void> => {
      const loss = await p.value;
      history.losses.push(loss);
      epochLoss += loss;
      epochSteps++;
      epochImages += p.images;
      windowImages += p.images;
      const t = now();
      const last = p.step === steps;
      const progress: TrainProgress = {
        epoch: epoch + 1,
        epochs,
        step: p.step,
        steps,
        loss,
        runningLoss: epochLoss / epochSteps,
        imagesPerSecond: windowImages / Math.max(t - windowStart, 1e-9),
        seconds: t - t0,
      };
      onProgress?.(progress);
      if (log && (p.step % logEvery === 0 || last)) {
        log(
          `epoch ${progress.epoch}/${epochs}  step ${pad(p.step, steps)}/${steps}  loss ${loss.toFixed(4)}  ` +
            `running ${progress.runningLoss.toFixed(4)}  ${Math.round(progress.imagesPerSecond)} img/s` +
            (last ? '' : `  epoch ETA ${formatDuration(remainingSeconds(p.step, steps, t - epochStart))}`),
        );
        windowStart = t;
        windowImages = 0;
      }
      if (!Number.isFinite(loss)) {
        throw new ArgumentError(`train: the loss became ${loss} at epoch ${epoch + 1}, step ${p.step}; lower the learning rate`);
      }
    };

    try {
      for await (const batch of loader.batches(epoch)) {
        if (signal?.aborted) {
          batch.x.dispose();
          history.stopped = true;
          break;
        }
        let value: Promise<number>;
        try {
          value = (await trainStep(model, params, optimizer, batch.x, batch.labels)).loss;
        } finally {
          batch.x.dispose();
        }
        value.catch(() => undefined); // awaited below; keeps Node from reporting it as unhandled meanwhile
        if (pending) await report(pending);
        pending = { value, step: batch.step + 1, images: batch.labels.length };
      }
      if (pending) await report(pending);
      pending = null;
    } finally {
      if (pending) await pending.value.catch(() => undefined);
    }

    const seconds = now() - epochStart;
    const summary: EpochSummary = {
      epoch: epoch + 1,
      meanLoss: epochSteps ? epochLoss / epochSteps : NaN,
      steps: epochSteps,
      seconds,
      imagesPerSecond: epochImages / Math.max(seconds, 1e-9),
    };
    history.epochs.push(summary);
    log?.(
      `epoch ${summary.epoch}/${epochs} ${history.stopped ? 'stopped' : 'done'}: mean loss ${summary.meanLoss.toFixed(4)}, ` +
        `${summary.seconds.toFixed(1)} s, ${Math.round(summary.imagesPerSecond)} img/s`,
    );
    if (!history.stopped) await onEpochEnd?.(summary);
  }
  return history;
}

/**
 * One optimisation step on (x, labels). Returns the loss's read-back, already submitted but not
 * awaited (`await (await trainStep(...)).loss`). Every tensor the step creates is freed before it
 * returns.
 */
export async function trainStep(
  model: Trainable,
  params: readonly Tensor[],
  optimizer: Optimizer,
  x: Tensor,
  labels: ArrayLike<number>,
): Promise<{ loss: Promise<number> }> {
  const gpu = x.gpu;
  return gpu.scope(async () => {
    const tape = new Tape(gpu);
    let grads: Gradients | null = null;
    try {
      for (const p of params) tape.watch(p);
      const loss = await tape.run(async () => crossEntropy(await model.forward(x, { training: true, logits: true }), labels));
      grads = await tape.backward(loss);
      tape.dispose(); // before the update: nothing may read the old parameters any more
      await optimizer.step(params, grads);
      // Records the copy and submits the batch now; the promise resolves when the GPU is done.
      // Wrapped so that neither the scope nor the async function waits for the promise.
      return { loss: loss.read().then((v) => v[0]!) };
    } finally {
      grads?.dispose();
      tape.dispose();
    }
  });
}

export interface PredictOptions {
  /** The model's GPU. Default: that of its first parameter. */
  gpu?: Gpu;
  /** Images per forward pass. Default 256. */
  batchSize?: number;
  /** Shape of one image. Default [1, 28, 28]. */
  sampleShape?: readonly number[];
}

export interface Predictions {
  /** Argmax class of each image. */
  classes: Int32Array;
  /** The model's logits, N × numClasses. */
  logits: Float32Array;
  numClasses: number;
}

/** Runs the model (inference mode, no gradients) over `images` (N × prod(sampleShape) values). */
export async function predict(model: Trainable, images: Float32Array, options: PredictOptions = {}): Promise<Predictions> {
  const { batchSize = 256, sampleShape = [1, 28, 28] } = options;
  const gpu = options.gpu ?? model.parameters()[0]?.gpu;
  if (!gpu) throw new ArgumentError('predict: the model has no parameters to take the GPU from; pass options.gpu');
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError(`predict: batchSize must be a positive integer, got ${batchSize}`);
  const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
  if (images.length === 0 || images.length % sampleSize !== 0) {
    throw new ShapeError(`predict: ${images.length} values are not a whole number of ${formatShape(sampleShape)} images`);
  }
  const count = images.length / sampleSize;
  let logits: Float32Array | null = null;
  let numClasses = 0;
  for (let begin = 0; begin < count; begin += batchSize) {
    const n = Math.min(batchSize, count - begin);
    const out = await gpu.scope(() =>
      noGrad(gpu, async () => {
        const x = tensor(gpu, images.subarray(begin * sampleSize, (begin + n) * sampleSize), [n, ...sampleShape]);
        const y = await model.forward(x, { logits: true });
        if (y.rank !== 2 || y.shape[0] !== n) throw new ShapeError(`predict: the model returned ${formatShape(y.shape)} for ${n} images; expected [${n}, classes]`);
        return { values: await y.read(), k: y.shape[1]! };
      }),
    );
    if (!logits) {
      numClasses = out.k;
      logits = new Float32Array(count * numClasses);
    }
    logits.set(out.values, begin * numClasses);
  }
  const classes = new Int32Array(count);
  for (let i = 0; i < count; i++) classes[i] = argmax(logits!, i * numClasses, numClasses);
  return { classes, logits: logits!, numClasses };
}

/** Fraction of `images` whose predicted class equals the label. */
export async function evaluate(
  model: Trainable,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: PredictOptions = {},
): Promise<number> {
  const { classes } = await predict(model, images, options);
  if (labels.length !== classes.length) throw new ShapeError(`evaluate: ${labels.length} labels for ${classes.length} images`);
  let correct = 0;
  for (let i = 0; i < classes.length; i++) if (classes[i] === labels[i]) correct++;
  return correct / classes.length;
}

function argmax(a: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[offset + j]! > a[offset + best]!) best = j;
  return best;
}

function now(): number {
  return performance.now() / 1000;
}

function pad(i: number, of: number): string {
  return String(i).padStart(String(of).length, ' ');
}
