/**
 * The graph executor that every imported graph format shares (TF.js graph models, ONNX).
 *
 * A format reads its file, orders its nodes and turns each node into a step through its op table
 * (a Map from op name to builder). This module does the rest:
 *
 * - `GraphBuilder`: the values of the graph while it is built: constants (on the CPU, so that a
 *   node whose inputs are all constants is folded by its builder once, at load time) and runtime
 *   values (with their shapes, batch −1), the steps, the uploaded weights, limits on declared sizes,
 *   and clean-up when a load fails;
 * - `GraphModel`: the loaded model. It runs the steps in topological order, keeps each value only
 *   as long as a later step reads it, names every step's output on the tape (the hook points of
 *   the saliency methods), fuses a conv or linear step with the activation after it when nothing
 *   hooks the value between them, finds the logits (the input of a final softmax/sigmoid) and
 *   Grad-CAM's default layer, lists its layers, and copies itself (`clone`).
 *
 * Steps never hold the tensors of the weights they read: a builder gets a `DeviceConstant` handle
 * from `upload`, and a step's `run` resolves it through the model instance that runs it. So a clone
 * runs the same steps on its own copies of the weights, and shares no GPU buffer with the original.
 */
import * as ops from '../../autodiff/ops/index.js';
import { activeTape, nameOutput } from '../../autodiff/tape.js';
import type { Activation } from '../../kernels/common.js';
import { clone as cloneTensor } from '../../kernels/elementwise.js';
import { ArgumentError, FormatError, ShapeError, formatShape } from '../../runtime/errors.js';
import type { Gpu } from '../../runtime/gpu.js';
import { tensor, type Tensor } from '../../runtime/tensor.js';
import type { Layer } from '../model.js';
import type { LayerSpec, LayerType } from '../spec.js';
import type { ExplainableModel, ForwardOptions } from '../types.js';
import { checkedElements, hostLimits, type GraphLimits, type HostTensor } from './host.js';
import type { Limits } from '../../runtime/limits.js';

/** A value of the graph while it is built: a constant on the CPU, or computed at run time (shape with −1 for the batch). */
export type Value = { kind: 'const'; host: HostTensor } | { kind: 'runtime'; shape: number[] };

/**
 * A constant of the graph on the GPU (a weight, a bias, a mask …), as the op builders hold it: a
 * handle, not the tensor. A step resolves it at run time through the model instance running it
 * (`Resolve`), so that the model and each of its clones use their own tensors.
 */
export class DeviceConstant {
  /** Use `GraphBuilder.upload`. */
  constructor(
    /** Its place in the model's list of constants. */
    readonly index: number,
    readonly shape: readonly number[],
  ) {}
}

/** A model instance's tensor of a constant (null for null: an absent bias). */
export interface Resolve {
  (c: DeviceConstant): Tensor;
  (c: DeviceConstant | null): Tensor | null;
}

/** What a step runs: args[i] is the tensor of input i when it is a runtime value (undefined for constants); `w` resolves the constants. */
export type StepRun = (args: (Tensor | undefined)[], w: Resolve) => Promise<Tensor>;

/** What an op builder makes of a node whose output is computed at run time. */
export interface Prepared {
  /** The output's shape in the format's own layout, −1 for the batch. */
  shape: number[];
  run: StepRun;
  /** The nearest of our layer types ('conv2d', 'relu', 'gap', …); default: the op in lower case. */
  type?: string;
  spec?: Record<string, unknown>;
  /** The layer's parameters by our names (weight, bias, …): they become `layer(name).params`. */
  params?: Record<string, DeviceConstant>;
  /** A conv or linear step: the same computation with an activation fused into its kernel. */
  fused?(activation: Activation, alpha: number): StepRun;
  /** An activation step that a conv or linear step before it may take into its kernel. */
  activation?: { act: Exclude<Activation, 'none'>; alpha: number };
}

/** What a builder returns: a runtime step, or the node's value folded into a constant. */
export type OpResult = Prepared | HostTensor;

export function isFolded(r: OpResult): r is HostTensor {
  return 'data' in r;
}

/** One layer of an imported graph: a node's output, with the format's op and the values it reads. */
export interface GraphLayer extends Layer {
  /** The format's op, e.g. 'Conv' or '_FusedConv2D'. `type` is the nearest of our layer types. */
  readonly op: string;
  /** Names of the values it reads (constants included). */
  readonly inputs: readonly string[];
  /** The node's own name where it differs from its output's (ONNX). */
  readonly node?: string;
}

/** A step as the builder makes it; each model instance gives it a layer with its own tensors. */
export interface GraphStep {
  /** The output value's name: the hook point. */
  name: string;
  op: string;
  /** Runtime inputs by value name; null where the input is a constant. */
  inputs: (string | null)[];
  run: StepRun;
  fused?: Prepared['fused'];
  activation?: Prepared['activation'];
  /** The layer, less its parameters. */
  layer: Omit<GraphLayer, 'params'>;
  /** The layer's parameters (handles). */
  params: ReadonlyMap<string, DeviceConstant>;
}

/** A step of one model instance: its layer's parameters resolved to that instance's tensors. */
interface BoundStep extends GraphStep {
  layer: GraphLayer;
}

/**
 * The nodes `roots` depend on, dependencies first (an iterative depth-first search: deep graphs do
 * not exhaust the stack). `deps` lists a node's producers (it may throw for a missing one); a
 * cycle is a FormatError naming a node on it.
 */
export function dependencyOrder<N>(roots: readonly N[], deps: (n: N) => N[], label: (n: N) => string, model: string): N[] {
  const out: N[] = [];
  const state = new Map<N, 1 | 2>();
  for (const root of roots) {
    const stack: [N, boolean][] = [[root, false]];
    while (stack.length) {
      const [node, done] = stack.pop()!;
      if (done) {
        if (state.get(node) !== 2) {
          state.set(node, 2);
          out.push(node);
        }
        continue;
      }
      const s = state.get(node);
      if (s === 2) continue;
      if (s === 1) throw new FormatError(`${model}: the graph has a cycle through node '${label(node)}'`);
      state.set(node, 1);
      stack.push([node, true]);
      const d = deps(node);
      for (let i = d.length - 1; i >= 0; i--) if (state.get(d[i]!) !== 2) stack.push([d[i]!, false]);
    }
  }
  return out;
}

/**
 * The limits for a load on this device: the library's (runtime/limits.ts, `overrides` for this
 * call), and no tensor larger than one storage binding of the device holds.
 */
export function graphLimits(gpu: Gpu, overrides?: Partial<Limits>): GraphLimits {
  const device = Math.floor(Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) / 4);
  return { ...hostLimits(overrides), deviceElements: device };
}

/** Per-channel input normalisation a loader can put in front of a graph: (x − mean) / std. */
export interface InputNormalization {
  mean: readonly number[];
  std: readonly number[];
}

/** The values and steps of a graph being built, and the weights uploaded so far. */
export class GraphBuilder {
  readonly values = new Map<string, Value>();
  readonly steps: GraphStep[] = [];
  readonly uploaded: Tensor[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly limits: GraphLimits,
  ) {}

  /**
   * Uploads a constant (kept until the model is disposed), as float32; weights must be finite. The
   * handle is resolved by the step's `run` (its second argument).
   */
  upload(h: HostTensor, shape?: number[], what = 'a weight'): DeviceConstant {
    const s = shape ?? (h.shape.length ? h.shape : [1]);
    checkedElements(s, this.limits, `${this.name}: ${what}`);
    for (let i = 0; i < h.data.length; i++) {
      if (!Number.isFinite(h.data[i]!)) throw new FormatError(`${this.name}: ${what} holds ${h.data[i]} at index ${i}: weights must be finite`);
    }
    const t = this.gpu.keep(tensor(this.gpu, h.data instanceof Float32Array ? h.data : Float32Array.from(h.data), s));
    this.uploaded.push(t);
    return new DeviceConstant(this.uploaded.length - 1, t.shape);
  }

  /** The graph's input (or another runtime value) with its shape. */
  runtime(name: string, shape: number[]): void {
    this.values.set(name, { kind: 'runtime', shape });
  }

  constant(name: string, host: HostTensor): void {
    this.values.set(name, { kind: 'const', host });
  }

  /**
   * Adds the step of a node. `perSample` is its output shape per image in our layout (NCHW for
   * images), checked against the limits before anything runs.
   */
  step(o: { name: string; node?: string; op: string; inputNames: string[]; prepared: Prepared; perSample: number[]; inputPerSample: number[] }): void {
    const { name, op, prepared } = o;
    const where = `${this.name}: node '${o.node ?? name}' (${op})`;
    if (prepared.shape.some((d, i) => !(Number.isSafeInteger(d) && (d >= 0 || (i === 0 && d === -1))))) {
      throw new ShapeError(`${where}: the output shape ${formatShape(prepared.shape)} is not valid`);
    }
    checkedElements(o.perSample, this.limits, `${where}: the output per image`);
    this.values.set(name, { kind: 'runtime', shape: prepared.shape });
    const inputs = o.inputNames.map((n) => (n && this.values.get(n)?.kind === 'runtime' ? n : null));
    const type = prepared.type ?? op.toLowerCase();
    this.steps.push({
      name,
      op,
      inputs,
      run: prepared.run,
      fused: prepared.fused,
      activation: prepared.activation,
      layer: {
        name,
        op,
        ...(o.node !== undefined && o.node !== name ? { node: o.node } : {}),
        type: type as LayerType,
        spec: { name, type, ...prepared.spec } as unknown as LayerSpec,
        inputs: o.inputNames.filter((n) => n !== ''),
        inputShape: o.inputPerSample,
        outputShape: o.perSample,
      },
      params: new Map(Object.entries(prepared.params ?? {})),
    });
  }

  /**
   * Puts (x − mean)/std per channel in front of the graph: the model then takes `raw` (e.g. pixels
   * in [0, 1]) and the graph's own input `input` becomes the first step (a hook point like any).
   */
  normalizeInput(raw: string, input: string, shape: number[], n: InputNormalization): void {
    const channels = shape[1]!;
    const ok = (v: readonly number[], positive: boolean) =>
      Array.isArray(v) && (v.length === channels || v.length === 1) && v.every((x) => Number.isFinite(x) && (!positive || x > 0));
    if (shape.length !== 4 || !ok(n.mean, false) || !ok(n.std, true)) {
      throw new ArgumentError(`${this.name}: normalize needs ${channels} (or 1) finite means and positive standard deviations for an input of shape [${shape.join(', ')}]`);
    }
    const per = (v: readonly number[]) => Float32Array.from({ length: channels }, (_, k) => v[v.length === 1 ? 0 : k]!);
    const mean = this.upload({ dtype: 'float32', shape: [1, channels, 1, 1], data: per(n.mean) }, undefined, 'the normalisation mean');
    const std = this.upload({ dtype: 'float32', shape: [1, channels, 1, 1], data: per(n.std) }, undefined, 'the normalisation std');
    this.runtime(raw, shape);
    this.step({
      name: input,
      op: 'Normalize',
      inputNames: [raw],
      prepared: {
        shape,
        type: 'normalize',
        spec: { mean: [...per(n.mean)], std: [...per(n.std)] },
        run: async ([x], w) => {
          const centred = await ops.sub(x!, w(mean));
          try {
            return await ops.div(centred, w(std));
          } finally {
            centred.dispose();
          }
        },
      },
      perSample: shape.slice(1),
      inputPerSample: shape.slice(1),
    });
  }

  /** Frees what was uploaded (a failed load). */
  dispose(): void {
    for (const t of this.uploaded) t.dispose();
    this.uploaded.length = 0;
  }
}

/**
 * The error for ops a graph uses that its format's table lacks: the first op and node, the other
 * ops, the outputs that could still be computed, and the supported list.
 */
export function unsupportedOpsError(
  model: string,
  bad: readonly { op: string; name: string }[],
  computable: readonly string[],
  supported: readonly string[],
  optionHint = (ok: readonly string[]) => `load with { outputs: [${ok.map((o) => `'${o}'`).join(', ')}] } to compute them`,
): FormatError {
  const first = bad[0]!;
  const others = [...new Map(bad.filter((n) => n.op !== first.op).map((n) => [n.op, n.name])).entries()];
  const more = others.length ? ` (also: ${others.map(([op, n]) => `${op} in '${n}'`).join(', ')})` : '';
  return new FormatError(
    `${model}: op '${first.op}' of node '${first.name}' is not supported${more}. ` +
      (computable.length ? `These outputs need only supported ops: ${computable.join(', ')}; ${optionHint(computable)}. ` : '') +
      `Supported ops: ${supported.join(', ')}`,
  );
}

export interface GraphForwardOptions extends ForwardOptions {
  /** Which values to compute; default the model's outputs. */
  outputs?: string[];
}

/**
 * A loaded graph model. Implements `ExplainableModel`: every computed value is a layer named after
 * it, registered with nameOutput so hooks (Grad-CAM layers, neuron targets) can use it. Rank-4
 * values are NCHW.
 */
export class GraphModel implements ExplainableModel {
  readonly layers: readonly GraphLayer[];
  /** Per-sample input shape in our layout, e.g. [3, 128, 128]. */
  readonly inputShape: readonly number[];
  /** Per-sample shape of the main output (the first of `outputNames`). */
  readonly outputShape: readonly number[];
  /** The steps as the builder made them (shared with clones). */
  private readonly built: readonly GraphStep[];
  private readonly steps: BoundStep[];
  private readonly byName: Map<string, BoundStep>;
  /** Other names of hook points (ONNX node names → their output's name). */
  private readonly aliases: Map<string, string>;
  /** How many steps (and outputs) read each value, over the whole graph. */
  private readonly consumers = new Map<string, number>();
  private readonly plans = new Map<string, BoundStep[]>();
  /** This instance's tensors of the graph's constants. */
  private readonly resolve: Resolve;
  private disposed = false;

  /** Use a format's loader (`loadTfjsGraphModel`, `loadOnnxModel`). */
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    /** The graph's input value. */
    readonly inputName: string,
    inputShape: number[],
    /** The values the model computes; `forward` returns the first. */
    readonly outputNames: readonly string[],
    steps: readonly GraphStep[],
    /** The tensors of the constants the steps read, by `DeviceConstant.index`; this model disposes them. */
    private readonly constants: readonly Tensor[],
    readonly classNames: readonly string[] | undefined,
    aliases: ReadonlyMap<string, string> = new Map(),
  ) {
    const resolved = (c: DeviceConstant | null): Tensor | null => {
      if (c === null) return null;
      const t = constants[c.index];
      if (!t) throw new ArgumentError(`${name}: a step reads constant #${c.index}, which this model does not hold`);
      return t;
    };
    this.resolve = resolved as Resolve;
    this.built = steps;
    this.steps = steps.map((s) => ({ ...s, layer: { ...s.layer, params: new Map([...s.params].map(([k, c]) => [k, this.resolve(c)])) } }));
    this.byName = new Map(this.steps.map((s) => [s.name, s]));
    this.aliases = new Map([...aliases].filter(([a, n]) => !this.byName.has(a) && this.byName.has(n)));
    this.layers = this.steps.map((s) => s.layer);
    this.inputShape = inputShape;
    this.outputShape = this.byName.get(outputNames[0]!)?.layer.outputShape ?? inputShape;
    for (const s of steps) for (const i of s.inputs) if (i) this.consumers.set(i, (this.consumers.get(i) ?? 0) + 1);
    for (const o of outputNames) this.consumers.set(o, (this.consumers.get(o) ?? 0) + 1);
    const k = this.outputShape.reduce((a, b) => a * b, 1);
    if (classNames && classNames.length !== k) {
      throw new ArgumentError(`${name}: ${classNames.length} class names for an output of shape ${formatShape(this.outputShape)} (${k} values)`);
    }
  }

  /**
   * An independent copy: the same graph, hook points and outputs, with every constant (weights,
   * biases, masks) copied into new GPU buffers on the GPU, so that changing the copy's parameters
   * (e.g. re-initialising layers for the model-randomisation check) leaves this model as it is, and
   * either may be disposed without the other. Dispose the copy when done.
   */
  clone(): this {
    if (this.disposed) throw new ArgumentError(`model '${this.name}' was disposed`);
    const copies: Tensor[] = [];
    try {
      for (const t of this.constants) copies.push(this.gpu.keep(cloneTensor(t)));
      const Class = this.constructor as new (...args: ConstructorParameters<typeof GraphModel>) => this;
      const copy = new Class(this.gpu, this.name, this.inputName, [...this.inputShape], this.outputNames, this.built, copies, this.classNames, this.aliases);
      this.describeCopy(copy);
      return copy;
    } catch (e) {
      for (const t of copies) t.dispose();
      throw e;
    }
  }

  /** Gives a fresh clone what a format knows about the model besides its graph (a subclass's fields). */
  protected describeCopy(_copy: this): void {}

  get layerNames(): string[] {
    return this.layers.map((l) => l.name);
  }

  /** The ops the computed part of the graph uses. */
  get usedOps(): string[] {
    return [...new Set(this.steps.map((s) => s.op))].sort();
  }

  /** The layer (hook point) called `name`: a value's name, or a node's name where the format has both. */
  layer(name: string): GraphLayer {
    const l = this.step(name)?.layer;
    if (!l) {
      const names = this.layerNames;
      const shown = names.length > 40 ? [...names.slice(0, 40), `… (${names.length - 40} more)`] : names;
      throw new ArgumentError(`model '${this.name}' has no layer '${name}'; layers: ${shown.join(', ')}`);
    }
    return l;
  }

  private step(name: string): BoundStep | undefined {
    return this.byName.get(name) ?? this.byName.get(this.aliases.get(name) ?? '');
  }

  /**
   * The value `forward({ logits: true })` stops at: the input of the main output's final softmax,
   * log-softmax or sigmoid (looking through identities), else the main output itself.
   */
  get logitsName(): string {
    let s = this.step(this.outputNames[0]!);
    while (s && (s.layer.type as string) === 'identity' && s.inputs[0]) s = this.step(s.inputs[0]);
    if (s && ['softmax', 'logsoftmax', 'sigmoid'].includes(s.layer.type) && s.inputs[0] && this.step(s.inputs[0])) return s.inputs[0];
    return this.outputNames[0]!;
  }

  /**
   * Grad-CAM's default layer: the input of the last global pooling on the way to the logits when
   * it is a spatial map ([C, h, w] with h·w > 1); undefined when the graph has no such pooling
   * (the methods then take the last conv or activation layer with a spatial map).
   */
  get defaultCamLayer(): string | undefined {
    const plan = this.plan([this.logitsName]);
    for (let i = plan.length - 1; i >= 0; i--) {
      const s = plan[i]!;
      const type: string = s.layer.type;
      if (type !== 'gap' && type !== 'globalmaxpool') continue;
      const from = s.inputs.find((n): n is string => !!n);
      const l = from ? this.step(from)?.layer : undefined;
      if (l && l.outputShape.length === 3 && l.outputShape[1]! * l.outputShape[2]! > 1) return l.name;
    }
    return undefined;
  }

  /** All weights (conv and matmul weights and biases, in our layout). */
  parameters(): Tensor[] {
    return this.layers.flatMap((l) => [...l.params.values()]);
  }

  /** Runs x [N, ...inputShape] and returns the main output ([N, K] for a classifier). */
  async forward(x: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    const target = options.logits ? this.logitsName : this.outputNames[0]!;
    const [y] = await this.execute(x, [target]);
    return y!;
  }

  /** Runs x and returns every output by name (`options.outputs` to pick other values). The caller disposes them. */
  async forwardAll(x: Tensor, options: GraphForwardOptions = {}): Promise<Record<string, Tensor>> {
    const names = (options.outputs ?? this.outputNames).map((n) => this.canonical(n));
    const ys = await this.execute(x, names);
    return Object.fromEntries(names.map((n, i) => [n, ys[i]!]));
  }

  /** A value's name as the steps know it (formats may strip suffixes such as TF's ':0'). */
  protected canonical(name: string): string {
    return this.byName.has(name) ? name : (this.aliases.get(name) ?? name);
  }

  private plan(targets: string[]): BoundStep[] {
    const key = targets.join('\u0000');
    let p = this.plans.get(key);
    if (!p) {
      const need = new Set<string>();
      const stack = [...targets];
      while (stack.length) {
        const n = stack.pop()!;
        if (need.has(n)) continue;
        need.add(n);
        const s = this.step(n);
        if (s) for (const i of s.inputs) if (i) stack.push(i);
      }
      p = this.steps.filter((s) => need.has(s.name));
      this.plans.set(key, p);
    }
    return p;
  }

  /**
   * The activation step that `s` (a conv or linear step) can run fused with: its only reader, the
   * next step of the plan, which reads nothing else.
   */
  private fusable(s: GraphStep, next: GraphStep | undefined, targets: readonly string[]): boolean {
    return !!(
      s.fused &&
      next?.activation &&
      this.consumers.get(s.name) === 1 &&
      !targets.includes(s.name) &&
      next.inputs.filter((i) => i).length === 1 &&
      next.inputs.includes(s.name)
    );
  }

  private async execute(x: Tensor, targets: string[]): Promise<Tensor[]> {
    if (this.disposed) throw new ArgumentError(`model '${this.name}' was disposed`);
    const expected = this.inputShape;
    if (x.rank !== expected.length + 1 || expected.some((d, i) => x.shape[i + 1] !== d)) {
      throw new ShapeError(`model '${this.name}' expects input [N, ${expected.join(', ')}], got ${formatShape(x.shape)}`);
    }
    targets = targets.map((t) => {
      if (t !== this.inputName && !this.step(t)) this.layer(t); // unknown names: a clear error
      return t === this.inputName ? t : this.step(t)!.name;
    });
    const plan = this.plan(targets);
    const tape = activeTape(this.gpu);
    // How many later steps (and targets) still read each value.
    const uses = new Map<string, number>();
    for (const s of plan) for (const i of s.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const t of targets) uses.set(t, (uses.get(t) ?? 0) + 1);
    const live = new Map<string, Tensor>([[this.inputName, x]]);
    const release = (n: string) => {
      const left = (uses.get(n) ?? 0) - 1;
      uses.set(n, left);
      if (left <= 0 && n !== this.inputName) {
        live.get(n)?.dispose(); // the tape keeps what its backward needs
        live.delete(n);
      }
    };
    try {
      for (let k = 0; k < plan.length; k++) {
        const s = plan[k]!;
        const args = s.inputs.map((i) => (i ? live.get(i) : undefined));
        const next = plan[k + 1];
        let out: Tensor;
        let named = s;
        if (this.fusable(s, next, targets) && !tape?.isHooked(s.name)) {
          // conv/linear + activation in one kernel; the activation's rule still comes from the tape.
          out = await s.fused!(next!.activation!.act, next!.activation!.alpha)(args, this.resolve);
          tape?.markFused(s.name, next!.name);
          named = next!;
          k++;
        } else {
          out = await s.run(args, this.resolve);
        }
        nameOutput(this.gpu, named.name, out);
        live.set(named.name, out);
        for (const i of s.inputs) if (i) release(i);
      }
      // Each target gets its own handle (a view when a name repeats or is the input itself).
      const seen = new Set<string>();
      return targets.map((t) => {
        const v = live.get(t)!;
        if (t === this.inputName || seen.has(t)) return v.reshape(v.shape);
        seen.add(t);
        return v;
      });
    } catch (e) {
      for (const [n, t] of live) if (n !== this.inputName) t.dispose();
      throw e;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.constants) t.dispose();
  }
}
