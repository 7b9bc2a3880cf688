/**
 * Class activation maps: CAM (Zhou et al. 2016), Grad-CAM (Selvaraju et al. 2017) and Guided
 * Grad-CAM. Maps are [N, 1, H, W] at the input's size (or [N, 1, h, w] at the layer's with
 * upsample: 'none'), raw: not normalised.
 */
import { Tape } from '../autodiff/tape.js';
import { activationForward } from '../kernels/activation.js';
import { mul } from '../kernels/elementwise.js';
import { mean, sum } from '../kernels/reduce.js';
import { resize } from '../kernels/resize.js';
import { ArgumentError } from '../runtime/errors.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import {
  RULES,
  checkInput,
  classIndices,
  defaultCamLayer,
  disposeRun,
  gradientRun,
  isNeuronTarget,
  oneHot,
  scoresLogits,
  spatialLayer,
  type ClassTarget,
  type ExplainableModel,
  type ScoreOptions,
  ruleLabel,
} from './core.js';
import { activeMethodTrace, withMethodTrace, type TraceOn, type Traced } from './trace.js';
import { deviceOf } from './gradients.js';
import { methodJob } from './job.js';

export type Upsample = 'bilinear' | 'nearest' | 'none';

export interface CamOptions extends ScoreOptions {
  /** The feature layer; default for Grad-CAM: the last conv/activation layer with a spatial map. */
  layer?: string;
  /** How to bring the map to the input size (default 'bilinear', half-pixel centres). */
  upsample?: Upsample;
}

/** The upsampling mode asked for (default 'bilinear'), checked before any GPU work. */
function upsampleMode(op: string, mode: Upsample | undefined): Upsample {
  if (mode === undefined) return 'bilinear';
  if (mode !== 'bilinear' && mode !== 'nearest' && mode !== 'none') {
    throw new ArgumentError(`${op}: upsample must be 'bilinear', 'nearest' or 'none', got ${JSON.stringify(mode)}`);
  }
  return mode;
}

/** Resizes [N, 1, h, w] maps to the input's H×W (align_corners = false), or leaves them. */
async function upsampleMap(map: Tensor, x: Tensor, mode: Upsample): Promise<Tensor> {
  if (mode === 'none') return map;
  try {
    return await resize(map, [x.shape[2]!, x.shape[3]!], { mode });
  } finally {
    map.dispose();
  }
}

function classTarget(op: string, o: ScoreOptions): ClassTarget {
  if (isNeuronTarget(o.target)) throw new ArgumentError(`${op}: explains class scores; neuron targets are for vanilla, deconvnet and guidedBackprop`);
  return o.target;
}

/**
 * CAM: M_c(i, j) = Σ_k w_k^c · A^k(i, j), with A the features entering global average pooling and
 * w the weights of the one linear layer after it. No gradients; no ReLU (as in the original code).
 */
export function cam(model: ExplainableModel, x: Tensor, options: CamOptions & { trace: TraceOn }): Promise<Traced>;
export function cam(model: ExplainableModel, x: Tensor, options: CamOptions & { trace?: false }): Promise<Tensor>;
export function cam(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor | Traced>;
export function cam(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor | Traced> {
  return methodJob('cam', deviceOf(model), x, () => withMethodTrace(model.gpu, 'cam', options.trace, () => camMap(model, x, options)));
}

async function camMap(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor> {
  checkInput('cam', model, x);
  const upsample = upsampleMode('cam', options.upsample);
  const logits = scoresLogits('cam', options.score);
  const { features, linear } = camHead(model);
  if (options.layer !== undefined && options.layer !== features) {
    model.layer(options.layer);
    throw new ArgumentError(`cam: uses the features entering global average pooling ('${features}'), not '${options.layer}'; use gradCam for other layers`);
  }
  const target = classTarget('cam', options);
  const gpu = model.gpu;
  const tape = new Tape(gpu); // records names only: nothing is watched, so no gradient work
  try {
    const hook = tape.hook(features);
    // Everything but the map is freed on the way out, also when the target is rejected.
    return await gpu.scope(async () => {
      const traces = activeMethodTrace(gpu);
      const scores = await tape.run(() => model.forward(x, { logits }), { trace: traces?.mode });
      traces?.add(tape.takeForwardTrace(), 'forward');
      const classes = await classIndices('cam', target, scores);
      const A = hook.activation!; // [N, K, h, w]
      const K = A.shape[1]!;
      const W = await linear.params.get('weight')!.read(); // [classes, K]
      const wc = new Float32Array(classes.length * K);
      classes.forEach((c, n) => wc.set(W.subarray(c * K, (c + 1) * K), n * K));
      const weighted = await mul(A, tensor(gpu, wc, [classes.length, K, 1, 1])); // w_k^c · A^k
      const map = await sum(weighted, [1], true); // Σ_k
      return upsampleMap(map, x, upsample);
    });
  } finally {
    tape.dispose();
  }
}

/**
 * The layer whose activations CAM weighs: the features entering global average pooling. Throws,
 * naming the head it found, when the model has no conv features → GAP → one linear layer head.
 */
export function camFeatureLayer(model: ExplainableModel): string {
  return camHead(model).features;
}

/** Finds conv features → global average pooling → one linear layer (then maybe softmax/sigmoid). */
function camHead(model: ExplainableModel): { features: string; linear: ExplainableModel['layers'][number] } {
  const layers = model.layers;
  const gapIndex = layers.map((l) => l.type).lastIndexOf('gap');
  // flatten and dropout change nothing after GAP (its output is already [N, C]); a final softmax or
  // sigmoid is cut by the logits option.
  const transparent = new Set(['softmax', 'sigmoid', 'dropout', 'flatten', 'identity']);
  const rest = gapIndex >= 0 ? layers.slice(gapIndex + 1).filter((l) => !transparent.has(l.type)) : [];
  if (gapIndex < 1 || rest.length !== 1 || rest[0]!.type !== 'linear') {
    const tail = layers.slice(Math.max(0, gapIndex >= 1 ? gapIndex - 1 : layers.length - 3)).map((l) => `${l.name} (${l.type})`);
    throw new ArgumentError(
      `cam: needs a model whose head is conv features → global average pooling → one linear layer; ` +
        `model '${model.name}' ends with ${tail.join(' → ')}. Use gradCam instead`,
    );
  }
  return { features: layers[gapIndex - 1]!.name, linear: rest[0]! };
}

/**
 * Grad-CAM: α_k^c = (1/(h·w)) Σ_ij ∂S_c/∂A^k(i, j) (global average pooling of the gradient at the
 * layer), map = ReLU(Σ_k α_k^c A^k) at the layer's resolution, then upsampled.
 */
export function gradCam(model: ExplainableModel, x: Tensor, options: CamOptions & { trace: TraceOn }): Promise<Traced>;
export function gradCam(model: ExplainableModel, x: Tensor, options: CamOptions & { trace?: false }): Promise<Tensor>;
export function gradCam(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor | Traced>;
export function gradCam(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor | Traced> {
  return methodJob('gradCam', deviceOf(model), x, () =>
    withMethodTrace(model.gpu, 'gradCam', options.trace, async () => {
      const layer = options.layer ?? defaultCamLayer('gradCam', model);
      spatialLayer('gradCam', model, layer);
      const upsample = upsampleMode('gradCam', options.upsample);
      const map = await gradCamAtLayer(model, x, { ...options, target: classTarget('gradCam', options) }, layer);
      return upsampleMap(map, x, upsample);
    }),
  );
}

async function gradCamAtLayer(model: ExplainableModel, x: Tensor, options: ScoreOptions, layer: string): Promise<Tensor> {
  // Only the layer's gradient is needed: the backward pass stops there.
  const run = await gradientRun('gradCam', model, x, { ...options, hooks: [layer], hooksOnly: true });
  try {
    return await camFromHook(run.tape.hook(layer));
  } finally {
    disposeRun(run);
  }
}

async function camFromHook(hook: { activation: Tensor | null; gradient: Tensor | null }): Promise<Tensor> {
  const A = hook.activation!;
  const dA = hook.gradient!;
  const alpha = await mean(dA, [2, 3], true); // [N, K, 1, 1]
  const weighted = await mul(A, alpha);
  alpha.dispose();
  const summed = await sum(weighted, [1], true); // [N, 1, h, w]
  weighted.dispose();
  const map = await activationForward(summed, 'relu');
  summed.dispose();
  return map;
}

/**
 * Guided Grad-CAM: guided backprop (input shape) ⊙ the ReLU'd, un-normalised Grad-CAM map
 * upsampled to the input size, broadcast over channels. One forward pass serves both backward
 * passes (ordinary rules for Grad-CAM, guided rules for the input gradient).
 */
export function guidedGradCam(model: ExplainableModel, x: Tensor, options: CamOptions & { trace: TraceOn }): Promise<Traced>;
export function guidedGradCam(model: ExplainableModel, x: Tensor, options: CamOptions & { trace?: false }): Promise<Tensor>;
export function guidedGradCam(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor | Traced>;
export function guidedGradCam(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor | Traced> {
  return methodJob('guidedGradCam', deviceOf(model), x, () => withMethodTrace(model.gpu, 'guidedGradCam', options.trace, () => guidedGradCamMap(model, x, options)));
}

async function guidedGradCamMap(model: ExplainableModel, x: Tensor, options: CamOptions): Promise<Tensor> {
  const layer = options.layer ?? defaultCamLayer('guidedGradCam', model);
  spatialLayer('guidedGradCam', model, layer);
  const upsample = upsampleMode('guidedGradCam', options.upsample);
  if (upsample === 'none') throw new ArgumentError("guidedGradCam: the map must be upsampled to the input ('bilinear' or 'nearest')");
  const run = await gradientRun('guidedGradCam', model, x, { ...options, target: classTarget('guidedGradCam', options), hooks: [layer], hooksOnly: true });
  let coarse: Tensor | null = null;
  try {
    coarse = await camFromHook(run.tape.hook(layer));
    const seed = oneHot(run.scores.gpu, run.classes, run.scores.shape);
    const traces = activeMethodTrace(model.gpu);
    const guided = await run.tape.backward(run.scores, { seed, rules: RULES.guided, trace: traces?.mode }).finally(() => seed.dispose());
    traces?.add(guided.takeTrace(), `backward (${ruleLabel(RULES.guided)})`);
    const gb = guided.take(x);
    guided.dispose();
    const map = await upsampleMap(coarse, x, upsample);
    coarse = null;
    try {
      return await mul(gb, map);
    } finally {
      gb.dispose();
      map.dispose();
    }
  } finally {
    coarse?.dispose();
    disposeRun(run);
  }
}
