/**
 * What the "Inside the network" view shows, computed on the GPU and read back: the traces (with
 * their tensors) of the methods that tell the three ReLU rules apart, of Grad-CAM at a layer, and of
 * the chosen method, turned into plain arrays so that the page can redraw any layer, channel or step
 * without touching the GPU again.
 *
 * Everything here comes from the library's trace (src/autodiff/trace.ts, `trace: 'tensors'`): the
 * activations are the forward entries' outputs, the gradients the backward entries' incoming and
 * outgoing tensors, the masks the ReLU rule's forward output y and the gradient g it received, the
 * switches those max pooling unpooled through. Only Grad-CAM's channel weights α_k and the weighted
 * maps α_k·A^k are computed here, on the CPU, from the trace's A and ∂S/∂A; the map they sum to is
 * the one the GPU computed.
 *
 * The functions take a model and an input tensor and run the library's methods; they work in Node
 * as in the browser. The methods queue themselves on their device (`gpu.exclusive`), so in a
 * browser call these functions outside the queue's jobs (`classify` runs a forward pass of its own:
 * call it inside one).
 */
import { noGrad } from '../../src/autodiff/tape.js';
import { describeLayer, describeRules, type Trace, type TraceEntry, type TraceRule } from '../../src/autodiff/trace.js';
import type { ReluRule } from '../../src/kernels/activation.js';
import type { ExplainableModel } from '../../src/saliency/core.js';
import { METHODS, methodByName, runMethod, type ClassifierMethod, type ClassifierMethodName, type DisplayKind } from '../../src/saliency/methods.js';
import type { MethodTrace, Traced } from '../../src/saliency/trace.js';
import { ArgumentError } from '../../src/runtime/errors.js';
import type { Tensor } from '../../src/runtime/tensor.js';

/** A tensor read back: its shape and values (NCHW, or [N, features]). */
export interface Plane {
  shape: number[];
  values: Float32Array;
}

/** A layer's output in the forward pass. */
export interface LayerActivation {
  /** The layer's name as the model gives it (relu1), which the URL and the other sections use. */
  name: string;
  /** With the layers that ran fused into it (conv1+relu1). */
  label: string;
  /** The op that computed it (conv2d, maxpool2d, …). */
  op: string;
  output: Plane;
}

/** An activation rule as a backward entry applied it. */
export interface AppliedRule {
  activation: string;
  /** ordinary, guided, deconv (or another activation's rule). */
  rule: string;
  fused: boolean;
  /** The activation's forward output y: 1[x > 0] is 1[y > 0]. */
  y: Plane;
  /** The gradient right after the rule. */
  after: Plane;
}

/** The gradient arriving at one layer in one backward pass, and the ReLU rule applied there. */
export interface GradientAtLayer {
  /** The gradient of the layer's output (what arrives from above). */
  incoming: Plane;
  /** The activation rule applied at this layer (null for a layer without one: pooling, flatten, …). */
  rule: AppliedRule | null;
}

/** A max-pool layer, traced by DeconvNet: the switches its backward unpooled through. */
export interface PoolData {
  name: string;
  label: string;
  /** The pool's input (the activation it pooled), when the forward trace shows which tensor it was. */
  input: Plane | null;
  output: Plane;
  /** For every output, the flat index iy·W + ix of its window's maximum in the input plane (−1: none). */
  switches: Int32Array;
  /** DeconvNet's gradient arriving at the pool's output, and the one it sends down (unpooled). */
  incoming: Plane;
  unpooled: Plane;
}

/** One step of a backward pass: what goes in, the rule, what comes out. */
export interface StepData {
  /** The pass it belongs to ('backward (guided rule)'). */
  pass: string;
  op: string;
  layer: string | null;
  label: string;
  /** The rules in words ('relu guided (fused)', 'switches'); '' where the op's ordinary gradient ran. */
  rules: string;
  kernels: { name: string; workgroups: [number, number, number] }[];
  incoming: Plane | null;
  rule: AppliedRule | null;
  switches: Int32Array | null;
  /** The gradients sent to the op's inputs (those computed). */
  outgoing: { input: number; plane: Plane }[];
}

/** Grad-CAM at one layer, from its trace. */
export interface GradCamData {
  layer: string;
  label: string;
  /** The layer's activation A [1, K, h, w] and the gradient ∂S/∂A arriving there. */
  A: Plane;
  dA: Plane;
  /** α_k = mean over (i, j) of ∂S/∂A^k(i, j). */
  alpha: Float32Array;
  /** α_k·A^k, [1, K, h, w]. */
  weighted: Plane;
  /** Σ_k α_k·A^k, [1, 1, h, w] (before the ReLU). */
  sum: Plane;
  /** The GPU's Grad-CAM map at the layer's resolution (upsample: 'none'): ReLU of the sum. */
  map: Plane;
}

export interface ClassScore {
  index: number;
  name: string;
  probability: number;
}

/**
 * The model's class probabilities for `x` (one image): softmax of the logits, or σ for a model with
 * one output, best first; and the class `target` asks for ('top': the best).
 */
export async function classify(model: ExplainableModel & { readonly classNames?: readonly string[] }, x: Tensor, target: number | 'top'): Promise<{ target: number; classes: ClassScore[] }> {
  const out = await noGrad(model.gpu, () => model.forward(x, { logits: true }));
  let logits: Float32Array;
  try {
    if (out.rank !== 2 || out.shape[0] !== 1) throw new ArgumentError(`model '${model.name}' is not a classifier (its output is [${out.shape.join(', ')}])`);
    logits = await out.read();
  } finally {
    out.dispose();
  }
  const m = Math.max(...logits);
  const e = Array.from(logits, (z) => Math.exp(z - m));
  const total = e.reduce((a, b) => a + b, 0);
  const probs = logits.length === 1 ? [1 / (1 + Math.exp(-logits[0]!))] : e.map((v) => v / total);
  const classes = probs
    .map((probability, index) => ({ index, name: model.classNames?.[index] ?? `class ${index}`, probability }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index);
  const chosen = target === 'top' ? classes[0]!.index : target;
  if (!Number.isInteger(chosen) || chosen < 0 || chosen >= logits.length) {
    throw new ArgumentError(`target ${target} is out of range: model '${model.name}' has ${logits.length} classes (0..${logits.length - 1})`);
  }
  return { target: chosen, classes };
}

/** The methods the view can step through: one forward and one backward pass at most (no batches of samples). */
export function insideMethods(model?: ExplainableModel): ClassifierMethod[] {
  return METHODS.filter((m): m is Extract<(typeof METHODS)[number], { kind: 'classifier' }> => m.kind === 'classifier')
    .filter((m) => m.progressUnit === null && (!model || m.unsupported(model) === null))
    .map((m) => m as ClassifierMethod);
}

/** The three ReLU rules, with the method whose backward pass uses each everywhere (vanilla, guided backprop, DeconvNet). */
export const RULE_METHODS: readonly { rule: ReluRule; method: ClassifierMethodName; formula: string }[] = (
  [
    ['ordinary', 'g · 1[x > 0]'],
    ['guided', 'g · 1[x > 0] · 1[g > 0]'],
    ['deconv', 'g · 1[g > 0]'],
  ] as const
).map(([rule, formula]) => {
  const m = METHODS.find((e) => e.kind === 'classifier' && e.reluRule === rule && e.neuronTargets)!;
  return { rule, method: m.name as ClassifierMethodName, formula };
});

/** Everything the view draws for one model, image, target and method, besides Grad-CAM and the sanity check. */
export interface InsideData {
  target: number;
  classes: ClassScore[];
  /** Every layer's output, in forward order (from the vanilla gradient's forward pass). */
  layers: LayerActivation[];
  /** For each ReLU rule, the gradient arriving at each layer (by layer name). */
  gradients: Record<ReluRule, Map<string, GradientAtLayer>>;
  /** Max-pool layers by name, from DeconvNet's trace. */
  pools: Map<string, PoolData>;
  /** The chosen method: its map, and the steps of its backward passes in order. */
  method: { name: ClassifierMethodName; label: string; display: DisplayKind; map: Plane; steps: StepData[]; passes: string[] };
}

async function plane(t: Tensor): Promise<Plane> {
  return { shape: [...t.shape], values: await t.read() };
}

function activationRule(r: TraceRule | undefined): Extract<TraceRule, { kind: 'activation' }> | null {
  return r && r.kind === 'activation' ? r : null;
}

async function appliedRule(e: TraceEntry): Promise<AppliedRule | null> {
  const r = activationRule(e.rules.find((x) => x.kind === 'activation'));
  if (!r || !r.tensors) return null;
  return { activation: r.activation, rule: r.rule, fused: r.fused, y: await plane(r.tensors.y), after: await plane(r.tensors.after) };
}

/** The layers' outputs: for each named layer, the output of its last forward entry. */
async function layerActivations(forward: Trace): Promise<LayerActivation[]> {
  const last = new Map<string, TraceEntry>();
  for (const e of forward.entries) if (e.layer !== null && e.tensors?.output) last.set(e.layer, e);
  const out: LayerActivation[] = [];
  for (const [name, e] of last) out.push({ name, label: describeLayer(e), op: e.op, output: await plane(e.tensors!.output!) });
  return out;
}

/** For each layer, the gradient arriving at its output in `backward`, and its activation rule. */
async function gradientsByLayer(backward: Trace): Promise<Map<string, GradientAtLayer>> {
  const out = new Map<string, GradientAtLayer>();
  for (const e of backward.entries) {
    if (e.layer === null || !e.tensors?.incoming) continue;
    const seen = out.get(e.layer);
    if (!seen) out.set(e.layer, { incoming: await plane(e.tensors.incoming), rule: await appliedRule(e) });
    else if (!seen.rule) seen.rule = await appliedRule(e);
  }
  return out;
}

/** The max pools of DeconvNet's trace, with their switches, and their inputs from its forward trace. */
async function poolsOf(forward: Trace, backward: Trace): Promise<Map<string, PoolData>> {
  const out = new Map<string, PoolData>();
  for (const e of backward.entries) {
    const r = e.rules.find((x) => x.kind === 'switches');
    if (!r || r.kind !== 'switches' || !r.tensors || e.layer === null || out.has(e.layer)) continue;
    const unpooled = e.tensors?.outgoing?.[0];
    if (!e.tensors?.incoming || !unpooled) continue;
    // The same op in the forward trace (same tape step), and the entry before it that made its input.
    const f = forward.entries.findIndex((x) => x.step === e.step && x.op === e.op);
    let input: Plane | null = null;
    const inShape = e.inputShapes[0];
    for (let j = f - 1; j >= 0 && inShape; j--) {
      const prev = forward.entries[j]!;
      if (prev.outputShape.length === inShape.length && prev.outputShape.every((d, k) => d === inShape[k]) && prev.tensors?.output) {
        input = await plane(prev.tensors.output);
        break;
      }
    }
    const output = f >= 0 && forward.entries[f]!.tensors?.output ? await plane(forward.entries[f]!.tensors!.output!) : null;
    if (!output) continue;
    out.set(e.layer, {
      name: e.layer,
      label: describeLayer(e),
      input,
      output,
      switches: await r.tensors.switches.readInt32(),
      incoming: await plane(e.tensors.incoming),
      unpooled: await plane(unpooled),
    });
  }
  return out;
}

/** Every backward entry of every backward pass of `trace`, read back. */
async function stepsOf(trace: MethodTrace): Promise<StepData[]> {
  const steps: StepData[] = [];
  for (const pass of trace.backward) {
    for (const e of pass.entries) {
      const r = e.rules.find((x) => x.kind === 'switches');
      const outgoing: StepData['outgoing'] = [];
      for (const [k, t] of (e.tensors?.outgoing ?? []).entries()) if (t) outgoing.push({ input: k, plane: await plane(t) });
      steps.push({
        pass: pass.label,
        op: e.op,
        layer: e.layer,
        label: describeLayer(e),
        rules: describeRules(e),
        kernels: e.kernels.map((k) => ({ name: k.name, workgroups: k.workgroups })),
        incoming: e.tensors?.incoming ? await plane(e.tensors.incoming) : null,
        rule: await appliedRule(e),
        switches: r && r.kind === 'switches' && r.tensors ? await r.tensors.switches.readInt32() : null,
        outgoing,
      });
    }
  }
  return steps;
}

/** Runs `fn` on a traced run and frees the run's map and trace afterwards. */
async function withTraced<T>(run: Promise<Traced>, fn: (t: Traced) => Promise<T>): Promise<T> {
  const traced = await run;
  try {
    return await fn(traced);
  } finally {
    traced.result.dispose();
    traced.trace.dispose();
  }
}

/**
 * Runs the three ReLU rules' methods and `method` with `trace: 'tensors'` on `x` (one image) for
 * class `target`, and reads back what the view draws.
 */
export async function traceInside(model: ExplainableModel, x: Tensor, options: { method: ClassifierMethodName; target: number; classes: ClassScore[] }): Promise<InsideData> {
  const { target } = options;
  const entry = methodByName(options.method);
  const gradients = {} as Record<ReluRule, Map<string, GradientAtLayer>>;
  let layers: LayerActivation[] = [];
  let pools = new Map<string, PoolData>();
  let method: InsideData['method'] | null = null;
  const readMethod = async (t: Traced) => ({
    name: entry.name,
    label: entry.label,
    display: entry.display,
    map: await plane(t.result),
    steps: await stepsOf(t.trace),
    passes: t.trace.passes.map((p) => p.label),
  });
  for (const { rule, method: name } of RULE_METHODS) {
    await withTraced(runMethod(name, model, x, { target, trace: 'tensors' }), async (t) => {
      gradients[rule] = await gradientsByLayer(t.trace.backward[0]!);
      if (rule === 'ordinary') layers = await layerActivations(t.trace.forward[0]!);
      if (rule === 'deconv') pools = await poolsOf(t.trace.forward[0]!, t.trace.backward[0]!);
      if (name === entry.name) method = await readMethod(t);
    });
  }
  method ??= await withTraced(runMethod(entry.name, model, x, { target, trace: 'tensors' }), readMethod);
  return { target, classes: options.classes, layers, gradients, pools, method: method! };
}

/**
 * Grad-CAM at `layer` with its trace: A and ∂S/∂A as the tape saw them, α_k and α_k·A^k from them,
 * and the GPU's map (at the layer's resolution).
 */
export async function traceGradCam(model: ExplainableModel, x: Tensor, options: { layer: string; target: number }): Promise<GradCamData> {
  const { layer, target } = options;
  return withTraced(runMethod('gradCam', model, x, { target, layer, upsample: 'none', trace: 'tensors' }), async ({ result, trace }) => {
    const fwd = trace.forward[0]!.entries.filter((e) => e.layer === layer && e.tensors?.output);
    const back = trace.backward[0]!.entries.find((e) => e.layer === layer && e.tensors?.incoming);
    if (!fwd.length || !back) throw new Error(`gradCam's trace has no entry for layer '${layer}'`);
    const A = await plane(fwd.at(-1)!.tensors!.output!);
    const dA = await plane(back.tensors!.incoming!);
    return { layer, label: describeLayer(fwd.at(-1)!), A, dA, ...camSums(A, dA), map: await plane(result) };
  });
}

/** α_k = mean of ∂S/∂A^k over the plane, α_k·A^k and their sum over k (one image, [1, K, h, w]). */
export function camSums(A: Plane, dA: Plane): { alpha: Float32Array; weighted: Plane; sum: Plane } {
  const [, K, h, w] = A.shape as [number, number, number, number];
  const hw = h * w;
  const alpha = new Float32Array(K);
  const weighted = new Float32Array(K * hw);
  const sum = new Float64Array(hw);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let p = 0; p < hw; p++) s += dA.values[k * hw + p]!;
    alpha[k] = s / hw;
    for (let p = 0; p < hw; p++) {
      const v = alpha[k]! * A.values[k * hw + p]!;
      weighted[k * hw + p] = v;
      sum[p] = sum[p]! + v;
    }
  }
  return { alpha, weighted: { shape: [1, K, h, w], values: weighted }, sum: { shape: [1, 1, h, w], values: Float32Array.from(sum) } };
}
