/**
 * Reverse-mode automatic differentiation on a tape.
 *
 * While a tape is active (`tape.run(fn)`), every differentiable op whose inputs are tracked appends
 * one entry: (op name, inputs, output, what its backward needs). Recording order is already a
 * topological order, so `backward` is one loop over the entries in reverse, summing the gradients
 * of tensors used more than once.
 *
 * Backward rules live in one table keyed by op name. A caller can override entries of that table,
 * and the activation rules used by both plain and fused ops (`ordinary`, `guided`, `deconv`: entry
 * points of shaders/activation_backward.wgsl), for a single `backward` call: this is how guided
 * backprop and DeconvNet change the network's ReLUs without touching the model.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { HOLDS_TENSORS, type Gpu } from '../runtime/gpu.js';
import type { Tensor } from '../runtime/tensor.js';
import { add, fill } from '../kernels/elementwise.js';
import { ACTIVATION_RULES, activationBackward, isActivationRule, type ActivationName, type ActivationRules } from '../kernels/activation.js';
import { Trace, statsOf, type TraceEntry, type TraceKernel, type TraceMode, type TraceRule } from './trace.js';

export type { ActivationName, ActivationRuleName, ActivationRules, ReluRule } from '../kernels/activation.js';

/** What an op saved in its forward pass, when its type is not declared (see defineOp). */
export type UntypedSaved = Readonly<Record<string, unknown>>;

/** Given the gradient of an op's output, returns one gradient per input (null where not needed). */
export type BackwardRule<Saved = UntypedSaved> = (gradOut: Tensor, ctx: BackwardContext<Saved>) => Promise<(Tensor | null)[]>;

/**
 * An activation's backward rule written in TypeScript (a per-call override): from the gradient
 * above and the forward pass's *output* y of the activation, returns the gradient below.
 */
export type ActivationRule = (gradOut: Tensor, forward: ActivationForward) => Promise<Tensor>;

export interface ActivationForward {
  /** The activation's output. */
  y: Tensor;
  /** Extra parameters of the activation, e.g. the slope of a leaky ReLU. */
  alpha?: number;
}

/**
 * The rule of each activation for one backward call: a rule name (a shader entry point, see
 * ActivationRules; a name the activation does not have is a compile-time error), or a function.
 */
export type ActivationOverrides = { [A in ActivationName]?: ActivationRules[A] | ActivationRule };

/** Per-call replacements: an op's whole backward rule, or an activation's rule. */
export interface RuleOverrides {
  ops?: Record<string, BackwardRule>;
  /** E.g. `{ relu: 'guided' }`, or a custom ActivationRule. Applies to fused activations too. */
  activations?: ActivationOverrides;
}

export interface BackwardContext<Saved = UntypedSaved> {
  readonly gpu: Gpu;
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
  /** What the op saved in its forward pass, of the type its definition declares (defineOp). */
  readonly saved: Saved;
  /** needsGrad[i]: whether input i needs a gradient; rules skip the work for the others. */
  readonly needsGrad: readonly boolean[];
  /** Applies the activation rule in force for this call ('ordinary' unless overridden). */
  activation(name: ActivationName, gradOut: Tensor, forward: ActivationForward): Promise<Tensor>;
}

interface TapeEntry {
  op: string;
  inputs: (Tensor | null)[];
  outputId: number;
  output: Tensor;
  saved: Record<string, unknown>;
  retained: Tensor[];
  /** The layer whose output this op computed (or helped compute); set when the layer is named. */
  layer: string | null;
  fusedLayers: string[];
}

/**
 * The rule label a trace gives an op's own backward (e.g. max pooling's 'switches'), from what the
 * op saved; `hold` (null unless the trace keeps tensors) retains a saved tensor for the trace.
 */
type TraceRuleOf<Saved> = (saved: Saved, hold: ((t: Tensor) => Tensor) | null) => TraceRule;
const traceRules = new Map<string, TraceRuleOf<Record<string, unknown>>>();

const backwardRules = new Map<string, BackwardRule>();

/**
 * Registers the backward rule of op `op`, whose saved values are untyped. New ops use `defineOp`,
 * which declares the type of what the op saves.
 */
export function registerBackward(op: string, rule: BackwardRule): void {
  backwardRules.set(op, rule);
}

/** A differentiable op's link to the tape, made by `defineOp`. */
export interface OpDefinition<Saved extends object> {
  readonly name: string;
  /**
   * Called by the op's forward pass once it has computed `output`: records an entry if a tape is
   * active and an input is tracked. Tensors among `saved`'s values are retained until the tape is
   * disposed, so the caller may dispose its own references.
   */
  record(inputs: readonly (Tensor | null)[], output: Tensor, ...saved: {} extends Saved ? [saved?: Saved] : [saved: Saved]): void;
}

/**
 * Defines op `name`: registers its backward rule, which receives what the forward pass saved with
 * the declared type `Saved` (no casts), and returns the `record` its forward pass calls:
 *
 *   const scaleOp = defineOp<{ alpha: number }>('scale', async (dy, ctx) => [await kernels.scale(dy, ctx.saved.alpha)]);
 *   export async function scale(x: Tensor, alpha: number) {
 *     const y = await kernels.scale(x, alpha);
 *     scaleOp.record([x], y, { alpha });
 *     return y;
 *   }
 */
export function defineOp<Saved extends object = Record<string, never>>(
  name: string,
  backward: BackwardRule<Readonly<Saved>>,
  options: {
    /**
     * How a trace names this op's backward rule, when it has a name of its own (max pooling:
     * switches): the rule, or a function of what the op saved that makes it (and, given `hold`,
     * keeps saved tensors with it for trace: 'tensors').
     */
    traceRule?: TraceRule | TraceRuleOf<Readonly<Saved>>;
  } = {},
): OpDefinition<Saved> {
  // The tape stores every op's saved values alike; this op's own record() is the only writer of
  // its entries, so they have type Saved.
  registerBackward(name, backward as unknown as BackwardRule);
  const { traceRule } = options;
  if (traceRule) traceRules.set(name, (typeof traceRule === 'function' ? traceRule : () => traceRule) as unknown as TraceRuleOf<Record<string, unknown>>);
  return {
    name,
    record(inputs, output, ...saved) {
      recordOp(output.gpu, name, inputs, output, (saved[0] ?? {}) as Record<string, unknown>);
    },
  };
}

/**
 * The bookkeeping of a backward rule that makes several gradients: `body` fills `grads` (one slot
 * per input, null until made) and puts intermediates in `temps`. The temps are freed however the
 * body ends; if it throws, so are the gradients it made, and the error goes on.
 */
export async function makeGrads(
  inputs: number,
  body: (grads: (Tensor | null)[], temps: Tensor[]) => Promise<void>,
): Promise<(Tensor | null)[]> {
  const grads: (Tensor | null)[] = new Array<Tensor | null>(inputs).fill(null);
  const temps: Tensor[] = [];
  try {
    await body(grads, temps);
    return grads;
  } catch (e) {
    for (const t of grads) t?.dispose();
    throw e;
  } finally {
    for (const t of temps) t.dispose();
  }
}

// Views (Tensor.reshape) are recorded by the runtime itself, so their rule lives here.
defineOp<{ shape: readonly number[] }>('reshape', async (dy, ctx) => [ctx.needsGrad[0] ? dy.reshape(ctx.saved.shape) : null]);

/** The backward rules activation `name` has (its entry points in shaders/activation_backward.wgsl). */
export function activationVariants(name: ActivationName): string[] {
  return [...(ACTIVATION_RULES[name] ?? [])];
}

/** The innermost active tape, or null under no-grad or outside any tape. */
export function activeTape(gpu: Gpu): Tape | null {
  if (gpu.queue.foreign()) return null; // the running job's tape is not the caller's
  const s = gpu.tapeStack;
  return s.length ? (s[s.length - 1] as Tape | null) : null;
}

/** Runs `fn` with gradient recording switched off. */
export async function noGrad<T>(gpu: Gpu, fn: () => Promise<T> | T): Promise<T> {
  if (gpu.queue.foreign()) return fn(); // outside the running job no tape is active anyway
  gpu.tapeStack.push(null);
  try {
    return await fn();
  } finally {
    gpu.tapeStack.pop();
  }
}

/**
 * Called by every differentiable op after its forward pass. Records an entry if a tape is active
 * and at least one input is tracked. Tensors among `saved`'s values are retained until the tape
 * is disposed, so the caller may dispose its own references.
 */
export function recordOp(
  gpu: Gpu,
  op: string,
  inputs: readonly (Tensor | null)[],
  output: Tensor,
  saved: Record<string, unknown> = {},
): void {
  const tape = activeTape(gpu);
  if (!tape) return;
  tape.record(op, inputs, output, saved);
}

/**
 * Marks `t` as the output of the layer named `name`, so hooks can capture its activation and
 * gradient. Models call it for every layer.
 */
export function nameOutput(gpu: Gpu, name: string, t: Tensor): Tensor {
  activeTape(gpu)?.name(name, t);
  return t;
}

/** What a hook has captured for one named layer. */
export class LayerHook {
  activation: Tensor | null = null;
  gradient: Tensor | null = null;
  constructor(readonly layer: string) {}
}

/** Gradients returned by `backward`; the caller owns them (a `gpu.scope` returning them keeps them). */
export class Gradients {
  constructor(
    private readonly byId: Map<number, Tensor>,
    /** The backward pass's trace, when `backward` was asked for one (disposed with the gradients unless taken). */
    public trace: Trace | null = null,
  ) {}
  [HOLDS_TENSORS](): Iterable<Tensor> {
    return this.byId.values();
  }
  /** The gradient of `t`, or undefined if `t` did not influence the output or is not tracked. */
  get(t: Tensor): Tensor | undefined {
    return this.byId.get(t.id);
  }
  /** Removes t's gradient from this set and hands it to the caller, who then disposes it. */
  take(t: Tensor): Tensor {
    const g = this.of(t);
    this.byId.delete(t.id);
    return g;
  }
  /** Like get, but throws a clear error when there is none. */
  of(t: Tensor): Tensor {
    const g = this.byId.get(t.id);
    if (!g) throw new ArgumentError(`no gradient for ${t.describe()}: it is not watched, or the output does not depend on it`);
    return g;
  }
  get size(): number {
    return this.byId.size;
  }
  /** Hands the trace to the caller, who then disposes it; null when none was asked for. */
  takeTrace(): Trace | null {
    const t = this.trace;
    this.trace = null;
    return t;
  }
  /** Frees the gradients, and the trace unless it was taken. */
  dispose(): void {
    for (const g of this.byId.values()) g.dispose();
    this.byId.clear();
    this.trace?.dispose();
    this.trace = null;
  }
}

export interface BackwardOptions {
  /** Gradient of the output to start from (same shape). Default: all ones. */
  seed?: Tensor;
  /** Per-call rule replacements, e.g. `{ activations: { relu: 'guided' } }`. */
  rules?: RuleOverrides;
  /**
   * Propagate only as far as the hooked layers: only their outputs and tensors computed from them
   * receive gradients, so ops before them do no gradient work, and watched tensors and parameters
   * get none (unless hooked). Grad-CAM needs the gradient of one late layer, not of the input or
   * the weights. Default false.
   */
  stopAtHooks?: boolean;
  /**
   * Record a trace of this pass, one entry per tape step (see trace.ts), returned as `grads.trace`:
   * true for statistics, 'tensors' to keep the gradients too (freed with the trace). Default false.
   */
  trace?: TraceMode;
  /**
   * Release each op's saved tensors, and the layer outputs it named, as soon as the pass has gone
   * by it, so that memory falls during the backward pass instead of at `dispose()` (the forward
   * pass's outputs are most of a gradient's memory). The tape can then not run `backward` again nor
   * give `activation(layer)`; hooks keep what they captured. For one-shot gradients such as the
   * input gradient of vanilla or SmoothGrad. Default false.
   */
  releaseSaved?: boolean;
}

export interface RunOptions {
  /**
   * Record a trace of the forward pass, one entry per op (see trace.ts), kept as `tape.forwardTrace`:
   * true for statistics, 'tensors' to keep the outputs too. Default false.
   */
  trace?: TraceMode;
}

/** The forward trace being recorded by `run`. */
interface ForwardTracing {
  trace: Trace;
  kernels: TraceKernel[];
  /** Entries whose output statistics are read when the run ends, with their (retained) outputs. */
  pending: { entry: TraceEntry; output: Tensor }[];
  /** First entry not yet given a layer name. */
  unnamed: number;
}

export class Tape {
  private entries: TapeEntry[] = [];
  /** First entry not yet given a layer name. */
  private unnamed = 0;
  private tracing: ForwardTracing | null = null;
  private forward: Trace | null = null;
  private tracked = new Set<number>();
  private watched = new Map<number, Tensor>();
  private names = new Map<string, Tensor>();
  private hooks = new Map<string, LayerHook>();
  private fused = new Map<string, string>();
  private disposed = false;
  /** Set by a backward pass with `releaseSaved`. */
  private released = false;

  constructor(readonly gpu: Gpu) {}

  /** Tracks `t` (typically the input image) so that its gradient is computed. */
  watch(t: Tensor): Tensor {
    this.tracked.add(t.id);
    this.watched.set(t.id, t);
    return t;
  }

  /** Runs `fn` with this tape recording; with `{ trace }`, records the forward trace too. */
  async run<T>(fn: () => Promise<T> | T, options: RunOptions = {}): Promise<T> {
    if (this.disposed) throw new ArgumentError('this tape was disposed');
    if (this.gpu.queue.foreign()) return this.gpu.exclusive(() => this.run(fn, options)); // after the running job
    const mode = checkTraceMode('run', options.trace);
    const tracing: ForwardTracing | null = mode ? { trace: new Trace('forward', mode), kernels: [], pending: [], unnamed: 0 } : null;
    const observe = (name: string, workgroups: [number, number, number]) => tracing!.kernels.push({ name, workgroups });
    if (tracing) {
      if (this.tracing) throw new ArgumentError('run: this tape is already recording a forward trace');
      this.tracing = tracing;
      this.gpu.dispatchObservers.add(observe);
    }
    this.gpu.tapeStack.push(this);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      if (tracing) {
        for (const p of tracing.pending) p.output.release();
        tracing.trace.dispose();
      }
      throw e;
    } finally {
      const i = this.gpu.tapeStack.lastIndexOf(this);
      if (i >= 0) this.gpu.tapeStack.splice(i, 1);
      if (tracing) {
        this.gpu.dispatchObservers.delete(observe);
        this.tracing = null;
      }
    }
    if (tracing) {
      try {
        for (const { entry, output } of tracing.pending) {
          entry.output = await statsOf(output);
          if (tracing.trace.keepsTensors) entry.tensors = { output: tracing.trace.hold(output) };
        }
      } finally {
        for (const p of tracing.pending) p.output.release();
      }
      this.forward?.dispose();
      this.forward = tracing.trace;
    }
    return result;
  }

  /** The trace of the last `run(fn, { trace })`, owned by the tape (freed with it); null without one. */
  get forwardTrace(): Trace | null {
    return this.forward;
  }

  /** Hands the forward trace to the caller, who then disposes it. */
  takeForwardTrace(): Trace | null {
    const t = this.forward;
    this.forward = null;
    return t;
  }

  /**
   * Captures the activation (during `run`) and gradient (during `backward`) of the named layer's
   * output. Register before `run`; an unknown name is reported by `backward` or `activation`.
   */
  hook(layer: string): LayerHook {
    let h = this.hooks.get(layer);
    if (!h) {
      h = new LayerHook(layer);
      this.hooks.set(layer, h);
      const t = this.names.get(layer);
      if (t) h.activation = t.retain();
    }
    return h;
  }

  /** The output of the named layer recorded during `run`. */
  activation(layer: string): Tensor {
    if (this.released) throw new ArgumentError(`activation('${layer}'): this tape released its saved tensors in backward({ releaseSaved: true })`);
    const t = this.names.get(layer);
    if (!t) throw this.unknownLayer(layer);
    return t;
  }

  /** True if a hook asks for this layer's output (models then keep it separate, unfused). */
  isHooked(layer: string): boolean {
    return this.hooks.has(layer);
  }

  /** @internal Records that `layer`'s output was not kept because it was fused into `into`. */
  markFused(layer: string, into: string): void {
    this.fused.set(layer, into);
  }

  /** Names of the layers recorded so far, in order. */
  get layerNames(): string[] {
    return [...this.names.keys()];
  }

  /** @internal Used by recordOp. */
  record(op: string, inputs: readonly (Tensor | null)[], output: Tensor, saved: Record<string, unknown>): void {
    const tracked = inputs.some((t) => t && this.isTracked(t));
    const tracing = this.tracing;
    if (tracing) {
      // Traced even when untracked (nothing watched, as in CAM): the forward pass is the lesson.
      const entry: TraceEntry = {
        pass: 'forward',
        step: tracked ? this.entries.length : null,
        op,
        layer: null,
        fusedLayers: [],
        inputShapes: inputs.map((t) => t?.shape ?? null),
        outputShape: output.shape,
        kernels: tracing.kernels.splice(0),
        rules: [],
      };
      tracing.trace.entries.push(entry);
      tracing.pending.push({ entry, output: output.retain() });
    }
    if (!tracked) return;
    const retained: Tensor[] = [];
    for (const v of Object.values(saved)) {
      if (isTensor(v)) retained.push(v.retain());
    }
    // The inputs are needed to decide which gradients to compute, not their data; no retain.
    this.entries.push({ op, inputs: [...inputs], outputId: output.id, output, saved, retained, layer: null, fusedLayers: [] });
    this.tracked.add(output.id);
  }

  /** @internal Used by nameOutput. */
  name(name: string, t: Tensor): void {
    // The ops recorded since the last named layer computed this one.
    const fusedLayers = [...this.fused].filter(([, into]) => into === name).map(([layer]) => layer);
    for (; this.unnamed < this.entries.length; this.unnamed++) Object.assign(this.entries[this.unnamed]!, { layer: name, fusedLayers });
    const tracing = this.tracing;
    if (tracing) {
      const list = tracing.trace.entries;
      for (; tracing.unnamed < list.length; tracing.unnamed++) Object.assign(list[tracing.unnamed]!, { layer: name, fusedLayers });
    }
    const old = this.names.get(name);
    if (old && old !== t) old.release();
    if (old !== t) this.names.set(name, t.retain());
    const h = this.hooks.get(name);
    if (h && h.activation !== t) {
      h.activation?.release();
      h.activation = t.retain();
    }
  }

  private isTracked(t: Tensor): boolean {
    return t.requiresGrad || this.tracked.has(t.id);
  }

  /**
   * Back-propagates from `output`. Returns the gradients of every watched tensor and parameter
   * (`requiresGrad`) that the output depends on; hooks receive their layers' gradients.
   */
  async backward(output: Tensor, options: BackwardOptions = {}): Promise<Gradients> {
    if (this.disposed) throw new ArgumentError('this tape was disposed');
    if (this.released) throw new ArgumentError('backward: this tape released its saved tensors in an earlier backward({ releaseSaved: true })');
    for (const layer of this.hooks.keys()) {
      if (!this.names.has(layer)) throw this.unknownLayer(layer);
    }
    if (!this.tracked.has(output.id) && !output.requiresGrad) {
      throw new ArgumentError(`backward: ${output.describe()} was not computed on this tape from a watched tensor or parameter`);
    }
    const ops = options.rules?.ops ?? {};
    const activationOverrides = options.rules?.activations ?? {};
    for (const op of Object.keys(ops)) {
      if (!backwardRules.has(op)) {
        throw new ArgumentError(`cannot override the backward rule of unknown op '${op}'; ops: ${[...backwardRules.keys()].sort().join(', ')}`);
      }
    }
    for (const [name, v] of Object.entries(activationOverrides) as [string, unknown][]) {
      if (!Object.hasOwn(ACTIVATION_RULES, name)) {
        throw new ArgumentError(`cannot override unknown activation '${name}'; activations: ${Object.keys(ACTIVATION_RULES).join(', ')}`);
      }
      // TypeScript rejects unknown rule names; JavaScript callers and strings from outside get this.
      if (typeof v !== 'function' && v !== undefined && !(typeof v === 'string' && isActivationRule(name as ActivationName, v))) {
        throw new ArgumentError(`unknown backward rule ${typeof v === 'string' ? `'${v}'` : String(v)} for ${name}; known: ${activationVariants(name as ActivationName).join(', ')}`);
      }
    }
    const mode = checkTraceMode('backward', options.trace);
    let seed: Tensor;
    if (options.seed) {
      if (options.seed.size !== output.size) {
        throw new ShapeError(`backward: seed ${formatShape(options.seed.shape)} does not match output ${formatShape(output.shape)}`);
      }
      // Same size, possibly another shape: give the rules the output's exact shape.
      seed = options.seed.reshape(output.shape);
    } else {
      seed = await fill(this.gpu, output.shape, 1);
    }

    // The trace: the entry of the step running now collects its kernels and rules.
    const trace = mode ? new Trace('backward', mode) : null;
    let step: TraceEntry | null = null;
    const observe = (name: string, workgroups: [number, number, number]) => step?.kernels.push({ name, workgroups });
    if (trace) this.gpu.dispatchObservers.add(observe);

    const activation = async (name: ActivationName, gradOut: Tensor, forward: ActivationForward): Promise<Tensor> => {
      const o = activationOverrides[name];
      const g = typeof o === 'function' ? await o(gradOut, forward) : await activationBackward(name, o ?? 'ordinary', gradOut, forward.y, forward.alpha ?? 0.01);
      if (step && trace) {
        const rule: TraceRule = {
          kind: 'activation',
          activation: name,
          rule: typeof o === 'function' ? 'custom' : (o ?? 'ordinary'),
          fused: step.op !== 'activation',
          after: await statsOf(g),
        };
        if (trace.keepsTensors) rule.tensors = { y: trace.hold(forward.y), after: trace.hold(g) };
        step.rules.push(rule);
      }
      return g;
    };

    const hooksByTensor = new Map<number, LayerHook[]>();
    for (const [layer, h] of this.hooks) {
      h.gradient?.release(); // a backward that does not reach the layer leaves null, not a stale value
      h.gradient = null;
      const id = this.names.get(layer)!.id;
      hooksByTensor.set(id, [...(hooksByTensor.get(id) ?? []), h]);
    }
    const keep = (t: Tensor) => this.watched.has(t.id) || t.requiresGrad;
    // With stopAtHooks, only tensors computed from a hooked layer's output need a gradient.
    let downstream: Set<number> | null = null;
    if (options.stopAtHooks) {
      downstream = new Set(hooksByTensor.keys());
      for (const e of this.entries) {
        if (e.inputs.some((t) => t && downstream!.has(t.id))) downstream.add(e.outputId);
      }
    }
    const needed = (t: Tensor | null) => !!t && this.isTracked(t) && (!downstream || downstream.has(t.id));
    const capture = (id: number, g: Tensor) => {
      for (const h of hooksByTensor.get(id) ?? []) h.gradient = g.retain();
    };

    const grads = new Map<number, Tensor>([[output.id, seed]]);
    const result = new Map<number, Tensor>();
    const accumulate = async (t: Tensor, g: Tensor) => {
      const prev = grads.get(t.id);
      if (!prev) {
        grads.set(t.id, g);
        return;
      }
      grads.delete(t.id);
      try {
        grads.set(t.id, await add(prev, g));
      } finally {
        prev.dispose();
        g.dispose();
      }
    };
    // With releaseSaved: the names of each tensor, to release them once its op has been passed.
    const namesOf = new Map<number, string[]>();
    if (options.releaseSaved) {
      this.released = true;
      for (const [name, t] of this.names) namesOf.set(t.id, [...(namesOf.get(t.id) ?? []), name]);
    }
    const pass = (e: TapeEntry) => {
      if (!options.releaseSaved) return;
      for (const t of e.retained) t.release();
      e.retained = [];
      for (const name of namesOf.get(e.outputId) ?? []) {
        this.names.get(name)?.release();
        this.names.delete(name);
      }
    };
    try {
      for (let i = this.entries.length - 1; i >= 0; i--) {
        const e = this.entries[i]!;
        const g = grads.get(e.outputId);
        if (!g) {
          pass(e);
          continue;
        }
        // From here until it is stored or freed, g is owned by this iteration.
        grads.delete(e.outputId);
        let inGrads: (Tensor | null)[] = [];
        try {
          capture(e.outputId, g);
          const needsGrad = e.inputs.map(needed);
          if (trace) {
            step = {
              pass: 'backward',
              step: i,
              op: e.op,
              layer: e.layer,
              fusedLayers: e.fusedLayers,
              inputShapes: e.inputs.map((t) => t?.shape ?? null),
              outputShape: e.output.shape,
              kernels: [],
              rules: ops[e.op]
                ? [{ kind: 'override', rule: 'custom' }]
                : traceRules.has(e.op)
                  ? [traceRules.get(e.op)!(e.saved, trace.keepsTensors ? (t) => trace.hold(t) : null)]
                  : [],
              incoming: await statsOf(g),
              outgoing: e.inputs.map(() => null),
            };
            if (trace.keepsTensors) step.tensors = { incoming: trace.hold(g), outgoing: e.inputs.map(() => null) };
            trace.entries.push(step);
          }
          if (needsGrad.some(Boolean)) {
            const rule = ops[e.op] ?? backwardRules.get(e.op);
            if (!rule) throw new ArgumentError(`no backward rule registered for op '${e.op}'`);
            const ctx: BackwardContext = { gpu: this.gpu, op: e.op, inputs: e.inputs, saved: e.saved, needsGrad, activation };
            inGrads = [...(await rule(g, ctx))];
            for (let k = 0; k < e.inputs.length; k++) {
              const t = e.inputs[k];
              const gi = inGrads[k];
              if (!gi) continue;
              inGrads[k] = null; // ownership moves to accumulate, or it is freed here
              if (!t || !needsGrad[k]) {
                gi.dispose();
                continue;
              }
              if (gi.size !== t.size) {
                gi.dispose();
                throw new ShapeError(`backward of '${e.op}' returned a gradient of shape ${formatShape(gi.shape)} for input ${formatShape(t.shape)}`);
              }
              if (step && trace) {
                step.outgoing![k] = await statsOf(gi);
                if (trace.keepsTensors) step.tensors!.outgoing![k] = trace.hold(gi);
              }
              const sameShape = gi.rank === t.rank && gi.shape.every((d, j) => d === t.shape[j]);
              await accumulate(t, sameShape ? gi : reshapeOwned(gi, t.shape));
            }
          }
          step = null;
        } catch (err) {
          g.dispose();
          for (const t of inGrads) t?.dispose();
          throw err;
        }
        pass(e);
        if (keep(e.output)) result.set(e.outputId, g);
        else g.dispose();
      }
      // What is left are gradients of tensors no entry produced: watched inputs and parameters.
      for (const [id, g] of grads) {
        capture(id, g);
        result.set(id, g);
      }
      grads.clear();
      return new Gradients(result, trace);
    } catch (err) {
      for (const g of grads.values()) g.dispose();
      for (const g of result.values()) g.dispose();
      trace?.dispose();
      throw err;
    } finally {
      if (trace) this.gpu.dispatchObservers.delete(observe);
    }
  }

  /** Frees everything the tape holds (saved tensors, named activations, hook captures). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const e of this.entries) for (const t of e.retained) t.release();
    this.entries = [];
    for (const t of this.names.values()) t.release();
    this.names.clear();
    for (const h of this.hooks.values()) {
      h.activation?.release();
      h.gradient?.release();
      h.activation = h.gradient = null;
    }
    this.hooks.clear();
    this.fused.clear();
    this.tracked.clear();
    this.watched.clear();
    this.forward?.dispose();
    this.forward = null;
  }

  private unknownLayer(layer: string): ArgumentError {
    const into = this.fused.get(layer);
    if (into) {
      return new ArgumentError(
        `layer '${layer}' ran fused with '${into}', so its own output was not kept; call tape.hook('${layer}') before running to keep it`,
      );
    }
    const known = [...this.names.keys()];
    return new ArgumentError(`unknown layer '${layer}'; layers: ${known.length ? known.join(', ') : '(none recorded yet)'}`);
  }
}

function checkTraceMode(op: string, trace: unknown): Exclude<TraceMode, false> | null {
  if (trace === undefined || trace === false) return null;
  if (trace === true || trace === 'tensors') return trace;
  throw new ArgumentError(`${op}: trace must be true, false or 'tensors', got ${JSON.stringify(trace)}`);
}

function isTensor(v: unknown): v is Tensor {
  return !!v && typeof v === 'object' && typeof (v as Tensor).retain === 'function' && 'shape' in (v as object);
}

function reshapeOwned(g: Tensor, shape: readonly number[]): Tensor {
  const r = g.reshape(shape);
  g.dispose();
  return r;
}
