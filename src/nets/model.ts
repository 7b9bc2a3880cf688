/**
 * Sequential models built from a JSON spec (see spec.ts), running on the differentiable ops, so
 * that any saliency method can back-propagate through them and hook any layer by name.
 */
import * as ops from '../autodiff/ops/index.js';
import { activeTape, nameOutput } from '../autodiff/tape.js';
import { samePadding, type Activation } from '../kernels/common.js';
import { clone as cloneTensor } from '../kernels/elementwise.js';
import { conv2dOutputShape } from '../kernels/conv2d.js';
import { poolOutputShape } from '../kernels/pool.js';
import { ArgumentError, FormatError, SaliencyError, ShapeError, formatShape } from '../runtime/errors.js';
import { checkTensorElements, resolveLimits, type Limits } from '../runtime/limits.js';
import type { Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import { Rng } from './data.js';
import { parseSafetensors, serializeSafetensors, type NamedArray } from './safetensors.js';
import {
  LAYER_TYPES,
  type LayerSpec,
  type LayerType,
  type ModelSpec,
  type Pair,
  type ParamValue,
  type Weights,
} from './spec.js';
import type { ForwardOptions, Trainable } from './types.js';

const ACTIVATION_TYPES = new Set<LayerType>(['relu', 'relu6', 'leakyrelu', 'sigmoid', 'tanh']);

/** One layer of a model: its spec, shapes (per sample, without N) and parameters. */
export interface Layer {
  readonly name: string;
  readonly type: LayerType;
  readonly spec: LayerSpec;
  /** Per-sample input shape, e.g. [C, H, W] or [F]. */
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** Parameters by PyTorch name: weight, bias, running_mean, running_var. */
  readonly params: ReadonlyMap<string, Tensor>;
}

interface LayerImpl extends Layer {
  params: Map<string, Tensor>;
  /** Resolved arguments for the op (padding in pixels, etc.). */
  args: Record<string, unknown>;
}

export interface ModelOptions {
  /** Seed for He initialisation of layers without weights, and for dropout masks. Default 0. */
  seed?: number;
  /** With `weights` given, He-initialise the layers they leave out instead of throwing. */
  allowMissing?: boolean;
  /** Limits for this model (default: the process-wide ones, see `setLimits`): its input, every layer's output and every weight. */
  limits?: Partial<Limits>;
}

/** `o[key]` if `o` has it as its own property: names from files never reach inherited members. */
function own<T>(o: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return o !== undefined && Object.hasOwn(o, key) ? o[key] : undefined;
}

export class Model implements Trainable {
  readonly layers: readonly Layer[];
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly classNames: readonly string[] | undefined;
  private readonly impl: LayerImpl[];
  private readonly dropoutRng: Rng;
  private readonly seed: number;
  private disposed = false;

  /** Use `modelFromSpec`. */
  constructor(
    readonly gpu: Gpu,
    readonly spec: ModelSpec,
    layers: LayerImpl[],
    seed: number,
  ) {
    this.impl = layers;
    this.layers = layers;
    this.inputShape = spec.input;
    this.outputShape = layers.length ? layers[layers.length - 1]!.outputShape : spec.input;
    this.classNames = spec.classes;
    this.seed = seed;
    this.dropoutRng = new Rng(seed ^ 0x9e3779b9);
  }

  /**
   * An independent copy: the same spec and weights in new GPU buffers, so that changing the copy's
   * parameters (e.g. re-initialising layers for the model-randomisation check) leaves this model
   * as it is. Dispose the copy when done.
   */
  clone(): Model {
    if (this.disposed) throw new ArgumentError(`model '${this.name}' was disposed`);
    const layers = this.impl.map((l) => ({ ...l, params: new Map([...l.params].map(([k, t]) => [k, this.gpu.keep(cloneTensor(t))])) }));
    return new Model(this.gpu, this.spec, layers, this.seed);
  }

  get name(): string {
    return this.spec.name ?? 'model';
  }

  get layerNames(): string[] {
    return this.impl.map((l) => l.name);
  }

  /** The layer called `name`; an unknown name gets an error listing the valid ones. */
  layer(name: string): Layer {
    const l = this.impl.find((x) => x.name === name);
    if (!l) throw new ArgumentError(`model '${this.name}' has no layer '${name}'; layers: ${this.layerNames.join(', ')}`);
    return l;
  }

  /**
   * The trainable parameters (weights and biases of conv and linear layers), less those of the
   * `frozen` layers (transfer learning: e.g. a detector that keeps fashion-vgg's first convolutions).
   */
  parameters(options: { frozen?: readonly string[] } = {}): Tensor[] {
    const frozen = new Set(options.frozen ?? []);
    for (const name of frozen) {
      const l = this.layer(name);
      if (l.type !== 'conv2d' && l.type !== 'linear') throw new ArgumentError(`cannot freeze layer '${name}' of '${this.name}': a ${l.type} layer has no trainable parameters`);
    }
    const out: Tensor[] = [];
    for (const l of this.impl) {
      if (l.type !== 'conv2d' && l.type !== 'linear') continue; // batchnorm statistics are frozen
      if (frozen.has(l.name)) continue;
      for (const key of ['weight', 'bias']) {
        const p = l.params.get(key);
        if (p) out.push(p);
      }
    }
    return out;
  }

  /** Every parameter under its PyTorch-style name, e.g. 'conv1.weight'. */
  namedParameters(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const l of this.impl) for (const [k, t] of l.params) out.set(`${l.name}.${k}`, t);
    return out;
  }

  /**
   * Runs x [N, ...input] through the layers. Each layer's output is named after the layer on the
   * active tape, so hooks can capture it. A conv or linear layer followed by an activation runs as
   * one fused kernel unless a hook asks for the conv/linear output itself.
   */
  async forward(x: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    if (this.disposed) throw new ArgumentError(`model '${this.name}' was disposed`);
    this.checkInput(x);
    const tape = activeTape(this.gpu);
    let last = this.impl.length;
    if (options.logits && last > 0) {
      const t = this.impl[last - 1]!.type;
      if (t === 'softmax' || t === 'sigmoid') last--;
    }
    let h = x;
    for (let i = 0; i < last; i++) {
      const layer = this.impl[i]!;
      const next = i + 1 < last ? this.impl[i + 1] : undefined;
      let out: Tensor;
      if ((layer.type === 'conv2d' || layer.type === 'linear') && next && ACTIVATION_TYPES.has(next.type) && !tape?.isHooked(layer.name)) {
        out = await this.run(layer, h, options, next);
        tape?.markFused(layer.name, next.name);
        i++;
        nameOutput(this.gpu, next.name, out);
      } else {
        out = await this.run(layer, h, options);
        nameOutput(this.gpu, layer.name, out);
      }
      if (h !== x) h.dispose(); // the tape keeps what its backward needs
      h = out;
    }
    return h === x ? x.reshape(x.shape) : h;
  }

  private checkInput(x: Tensor): void {
    const expected = this.inputShape;
    if (x.rank !== expected.length + 1 || expected.some((d, i) => x.shape[i + 1] !== d)) {
      throw new ShapeError(`model '${this.name}' expects input [N, ${expected.join(', ')}], got ${formatShape(x.shape)}`);
    }
  }

  private async run(layer: LayerImpl, x: Tensor, options: ForwardOptions, fuse?: LayerImpl): Promise<Tensor> {
    const a = layer.args;
    const p = layer.params;
    const activation = (fuse?.type ?? 'none') as Activation;
    const alpha = (fuse?.spec as { alpha?: number } | undefined)?.alpha ?? 0.01;
    switch (layer.type) {
      case 'conv2d':
        return ops.conv2d(x, p.get('weight')!, p.get('bias') ?? null, {
          stride: a.stride as Pair,
          padding: a.padding as [number, number, number, number],
          dilation: a.dilation as Pair,
          groups: a.groups as number,
          activation,
          alpha,
        });
      case 'linear':
        return ops.linear(x, p.get('weight')!, p.get('bias') ?? null, { activation, alpha });
      case 'relu':
      case 'relu6':
      case 'sigmoid':
      case 'tanh':
      case 'leakyrelu':
        return ops.activation(x, layer.type, (layer.spec as { alpha?: number }).alpha ?? 0.01);
      case 'maxpool2d':
        return ops.maxPool2d(x, a as never);
      case 'avgpool2d':
        return ops.avgPool2d(x, a as never);
      case 'gap':
        return ops.globalAvgPool(x);
      case 'flatten':
        return ops.flatten(x);
      case 'softmax':
        return ops.softmax(x, 1);
      case 'batchnorm': {
        const [scale, shift] = [p.get('_scale')!, p.get('_shift')!];
        const shape = x.rank === 4 ? [1, scale.size, 1, 1] : [1, scale.size];
        return this.gpu.scope(async () => ops.add(await ops.mul(x, scale.reshape(shape)), shift.reshape(shape)));
      }
      case 'dropout': {
        const prob = (layer.spec as { p?: number }).p ?? 0.5;
        if (!options.training || prob === 0) return ops.scale(x, 1);
        const mask = new Float32Array(x.size);
        for (let i = 0; i < mask.length; i++) mask[i] = this.dropoutRng.uniform() < prob ? 0 : 1 / (1 - prob);
        return this.gpu.scope(async () => ops.mul(x, tensor(this.gpu, mask, x.shape)));
      }
    }
  }

  /** Copies the weights to the CPU under PyTorch-style names ('conv1.weight'). */
  async exportWeights(): Promise<Record<string, NamedArray>> {
    const out: Record<string, NamedArray> = {};
    for (const [name, t] of this.namedParameters()) {
      if (name.includes('._')) continue; // derived batchnorm scale/shift
      out[name] = { shape: [...t.shape], data: await t.read() };
    }
    return out;
  }

  /** The weights as a safetensors file, with the spec in its metadata so the file stands alone. */
  async toSafetensors(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    return serializeSafetensors(await this.exportWeights(), { ...metadata, spec: JSON.stringify(this.spec) });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of this.impl) for (const t of l.params.values()) t.dispose();
  }
}

/**
 * Builds a model from a JSON spec. `weights` maps layer names to { weight, bias, … } in PyTorch
 * layout; without it, every layer is He-initialised from `options.seed`.
 */
export function modelFromSpec(gpu: Gpu, spec: ModelSpec, weights?: Weights, options: ModelOptions = {}): Model {
  const limits = resolveLimits(options.limits, 'modelFromSpec');
  validateSpec(spec, limits);
  const seed = options.seed ?? 0;
  const rng = new Rng(seed);
  const names = new Set<string>();
  const layers: LayerImpl[] = [];
  const created: Tensor[] = [];
  if (weights) {
    const known = new Set(spec.layers.map((l, i) => l.name ?? `${l.type}${i}`));
    for (const name of Object.keys(weights)) {
      if (!known.has(name)) throw new ArgumentError(`weights given for '${name}', which is not a layer of the spec; layers: ${[...known].join(', ')}`);
    }
  }
  try {
    let shape: number[] = [...spec.input];
    spec.layers.forEach((ls, index) => {
      const name = ls.name ?? `${ls.type}${index}`;
      if (names.has(name)) throw new ArgumentError(`two layers are named '${name}'; layer names must be unique`);
      names.add(name);
      const where = `layer '${name}' (${ls.type})`;
      const { outputShape, args, paramShapes } = inferLayer(ls, shape, where);
      for (const [key, pshape] of Object.entries(paramShapes)) checkTensorElements(size(pshape), `${where}: ${key} ${formatShape(pshape)}`, limits);
      checkTensorElements(size(outputShape), `${where}: output ${formatShape(outputShape)}`, limits);
      const params = new Map<string, Tensor>();
      const given = own(weights, name);
      if (weights && !given && Object.keys(paramShapes).length && !options.allowMissing) {
        throw new ArgumentError(`${where}: no weights given (expected ${describeParams(paramShapes)})`);
      }
      const values: Record<string, Float32Array> = {};
      for (const [key, pshape] of Object.entries(paramShapes)) {
        const v = own(given, key);
        if (v !== undefined) values[key] = checkParam(where, key, v, pshape);
        else if (given && !options.allowMissing) {
          throw new ArgumentError(`${where}: missing '${key}' of shape ${formatShape(pshape)}`);
        } else values[key] = initParam(ls.type, key, pshape, rng);
      }
      if (given) {
        for (const key of Object.keys(given)) {
          if (!Object.hasOwn(paramShapes, key)) {
            throw new ArgumentError(`${where}: unexpected parameter '${key}'; expected ${Object.keys(paramShapes).join(', ') || 'none'}`);
          }
        }
      }
      for (const [key, data] of Object.entries(values)) {
        const t = tensor(gpu, data, paramShapes[key]!);
        created.push(t);
        params.set(key, t);
      }
      if (ls.type === 'batchnorm') {
        const eps = ls.eps ?? 1e-5;
        const n = ls.features;
        const scale = new Float32Array(n);
        const shift = new Float32Array(n);
        for (let c = 0; c < n; c++) {
          const variance = values.running_var![c]!;
          if (!(variance >= 0)) {
            throw new ArgumentError(`${where}: running_var[${c}] is ${variance}; a variance must be ≥ 0 (with eps, the scale 1/√(var + eps) would be NaN)`);
          }
          scale[c] = values.weight![c]! / Math.sqrt(variance + eps);
          shift[c] = values.bias![c]! - values.running_mean![c]! * scale[c]!;
        }
        for (const [k, d] of [['_scale', scale], ['_shift', shift]] as const) {
          const t = tensor(gpu, d, [n]);
          created.push(t);
          params.set(k, t);
        }
      }
      for (const t of params.values()) gpu.keep(t);
      layers.push({ name, type: ls.type, spec: ls, inputShape: shape, outputShape, params, args });
      shape = outputShape;
    });
    const outputs = shape[0]!;
    // A classifier's output is [classes]; a dense predictor's ([5 + classes, g, g]) is not checked.
    if (spec.classes && shape.length === 1 && spec.classes.length !== outputs) {
      throw new ArgumentError(`model spec lists ${spec.classes.length} class names, but the model has ${outputs} outputs`);
    }
  } catch (e) {
    for (const t of created) t.dispose();
    throw e;
  }
  return new Model(gpu, spec, layers, seed);
}

/** Options of `modelFromSafetensors`. */
export interface SafetensorsModelOptions {
  /** Limits for this file (default: the process-wide ones, see `setLimits`). */
  limits?: Partial<Limits>;
}

/**
 * Rebuilds a model from a safetensors file written by `toSafetensors` (or with a given spec). Safe
 * for files from strangers: sizes are checked against the limits before anything is allocated,
 * and tensor names never become keys of objects with a prototype. Errors name `source`.
 */
export function modelFromSafetensors(gpu: Gpu, bytes: Uint8Array, spec?: ModelSpec, source = 'weights file', options: SafetensorsModelOptions = {}): Model {
  const limits = resolveLimits(options.limits, 'modelFromSafetensors');
  const file = parseSafetensors(bytes, source, { limits });
  let s = spec;
  if (!s) {
    const text = file.metadata.spec;
    if (!text) throw new ArgumentError(`${source} has no model spec in its metadata; pass the spec explicitly`);
    try {
      s = JSON.parse(text) as ModelSpec;
    } catch (e) {
      throw new ArgumentError(`${source}: the spec in its metadata is not valid JSON (${(e as Error).message})`);
    }
  }
  // Null-prototype objects: a tensor named '__proto__.x' or 'constructor.x' is an ordinary name.
  const weights: Weights = Object.create(null);
  for (const [key, t] of file.tensors) {
    const dot = key.lastIndexOf('.');
    if (dot < 0) throw new ArgumentError(`${source}: tensor name '${shorten(key)}' is not of the form layer.parameter`);
    const layer = key.slice(0, dot);
    const params = Object.hasOwn(weights, layer) ? weights[layer]! : (weights[layer] = Object.create(null) as Record<string, ParamValue>);
    params[key.slice(dot + 1)] = { data: t.data, shape: t.shape };
  }
  try {
    return modelFromSpec(gpu, s, weights, { limits });
  } catch (e) {
    // The same error class, naming the file.
    if (e instanceof SaliencyError && !e.message.startsWith(source)) {
      const Class = e.constructor as new (message: string) => SaliencyError;
      throw new Class(`${source}: ${e.message}`);
    }
    throw e;
  }
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A string from a file, cut for an error message. */
function shorten(s: string, max = 200): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

function validateSpec(spec: ModelSpec, limits: Readonly<Limits>): void {
  if (!spec || typeof spec !== 'object') throw new ArgumentError('model spec must be an object with "input" and "layers"');
  const inp = spec.input;
  if (!Array.isArray(inp) || inp.length !== 3 || inp.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new ArgumentError(`model spec "input" must be [C, H, W] of positive integers, got ${shorten(String(JSON.stringify(inp)))}`);
  }
  // Before anything is sized from it (the host-side resize of an image to the input, activations).
  checkTensorElements(size(inp), `the model input ${formatShape(inp)}`, limits);
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) throw new ArgumentError('model spec "layers" must be a non-empty array');
  spec.layers.forEach((l, i) => {
    if (!l || typeof l !== 'object' || !LAYER_TYPES.includes(l.type)) {
      throw new ArgumentError(`layer ${i} has unknown type ${shorten(String(JSON.stringify(l?.type)))}; known: ${LAYER_TYPES.join(', ')}`);
    }
    if (l.name !== undefined && (typeof l.name !== 'string' || l.name === '')) {
      throw new ArgumentError(`layer ${i} (${l.type}) has a name that is not a non-empty string: ${shorten(String(JSON.stringify(l.name)))}`);
    }
  });
  if (spec.classes !== undefined && (!Array.isArray(spec.classes) || spec.classes.some((c) => typeof c !== 'string'))) {
    throw new ArgumentError('model spec "classes" must be an array of strings');
  }
}

interface Inferred {
  outputShape: number[];
  args: Record<string, unknown>;
  paramShapes: Record<string, number[]>;
}

function inferLayer(ls: LayerSpec, shape: number[], where: string): Inferred {
  const needImage = () => {
    if (shape.length !== 3) throw new ShapeError(`${where} needs an image input [C, H, W], but receives ${formatShape(shape)}`);
  };
  const pos = (v: unknown, what: string) => {
    if (!Number.isInteger(v) || (v as number) <= 0) throw new ArgumentError(`${where}: "${what}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const show = (v: unknown) => shorten(String(JSON.stringify(v)));
  const pair = (v: Pair | undefined, d: number, what: string): [number, number] => {
    const p = v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
    if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isSafeInteger(n) && n >= 1)) {
      throw new ArgumentError(`${where}: "${what}" must be a positive integer or a pair of them, got ${show(v)}`);
    }
    return p as [number, number];
  };
  const padding = (p: unknown, kernel: [number, number], stride: [number, number], dilation: [number, number]) => {
    if (p === 'same') return samePadding([shape[1]!, shape[2]!], kernel, stride, dilation);
    if (p === undefined || p === 'valid') return [0, 0, 0, 0];
    const list = typeof p === 'number' ? [p] : p;
    if (!Array.isArray(list) || ![1, 2, 4].includes(list.length) || !list.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new ArgumentError(`${where}: invalid padding ${show(p)}; give pixels ≥ 0 (one number, [vertical, horizontal] or [top, bottom, left, right]), 'same' or 'valid'`);
    }
    if (list.length === 1) return [list[0], list[0], list[0], list[0]];
    if (list.length === 2) return [list[0], list[0], list[1], list[1]];
    return list;
  };
  switch (ls.type) {
    case 'conv2d': {
      needImage();
      const cin = pos(ls.in, 'in');
      const cout = pos(ls.out, 'out');
      const groups = ls.groups ?? 1;
      if (shape[0] !== cin) throw new ShapeError(`${where} expects ${cin} input channels, but receives ${formatShape(shape)}`);
      if (!Number.isInteger(groups) || groups <= 0 || cin % groups || cout % groups) {
        throw new ArgumentError(`${where}: groups ${groups} must divide in (${cin}) and out (${cout})`);
      }
      const kernel = pair(ls.kernel, 0, 'kernel');
      const stride = pair(ls.stride, 1, 'stride');
      const dilation = pair(ls.dilation, 1, 'dilation');
      const pad = padding(ls.padding, kernel, stride, dilation);
      const wShape = [cout, cin / groups, kernel[0], kernel[1]];
      const args = { stride, padding: pad, dilation, groups };
      let out: number[];
      try {
        out = conv2dOutputShape([1, ...shape], wShape, args as never).slice(1);
      } catch (e) {
        throw new ShapeError(`${where}: ${(e as Error).message}`);
      }
      const paramShapes: Record<string, number[]> = { weight: wShape };
      if (ls.bias !== false) paramShapes.bias = [cout];
      return { outputShape: out, args, paramShapes };
    }
    case 'linear': {
      const fin = pos(ls.in, 'in');
      const fout = pos(ls.out, 'out');
      if (shape.length !== 1) {
        throw new ShapeError(`${where} needs a flat input [${fin}], but receives ${formatShape(shape)}; add a "flatten" or "gap" layer before it`);
      }
      if (shape[0] !== fin) throw new ShapeError(`${where} expects ${fin} input features, but receives ${formatShape(shape)}`);
      const paramShapes: Record<string, number[]> = { weight: [fout, fin] };
      if (ls.bias !== false) paramShapes.bias = [fout];
      return { outputShape: [fout], args: {}, paramShapes };
    }
    case 'maxpool2d':
    case 'avgpool2d': {
      needImage();
      const kernel = pair(ls.kernel, 0, 'kernel');
      const s: [number, number] = ls.stride === undefined ? kernel : pair(ls.stride, 1, 'stride');
      const pad = padding(ls.padding, kernel, s, [1, 1]);
      const args: Record<string, unknown> = { kernel, stride: s, padding: pad, ceilMode: ls.ceilMode ?? false };
      if (ls.type === 'avgpool2d') args.countIncludePad = ls.countIncludePad ?? ls.padding !== 'same';
      let out: number[];
      try {
        out = poolOutputShape([1, ...shape], args as never).slice(1);
      } catch (e) {
        throw new ShapeError(`${where}: ${(e as Error).message}`);
      }
      return { outputShape: out, args, paramShapes: {} };
    }
    case 'gap':
      needImage();
      return { outputShape: [shape[0]!], args: {}, paramShapes: {} };
    case 'flatten':
      return { outputShape: [shape.reduce((a, b) => a * b, 1)], args: {}, paramShapes: {} };
    case 'batchnorm': {
      const n = pos(ls.features, 'features');
      if (shape[0] !== n) throw new ShapeError(`${where} expects ${n} channels, but receives ${formatShape(shape)}`);
      const eps = ls.eps ?? 1e-5;
      if (!(eps > 0)) throw new ArgumentError(`${where}: eps must be positive, got ${eps}`);
      return { outputShape: shape, args: {}, paramShapes: { weight: [n], bias: [n], running_mean: [n], running_var: [n] } };
    }
    case 'dropout': {
      const p = ls.p ?? 0.5;
      if (!(p >= 0 && p < 1)) throw new ArgumentError(`${where}: p must be in [0, 1), got ${p}`);
      return { outputShape: shape, args: {}, paramShapes: {} };
    }
    case 'softmax':
      if (shape.length !== 1) throw new ShapeError(`${where} needs a flat input [classes], but receives ${formatShape(shape)}`);
      return { outputShape: shape, args: {}, paramShapes: {} };
    default: {
      const alpha = (ls as { alpha?: number }).alpha;
      if (alpha !== undefined && !(Number.isFinite(alpha) && alpha >= 0)) {
        throw new ArgumentError(`${where}: alpha must be a finite number ≥ 0, got ${alpha}`);
      }
      return { outputShape: shape, args: {}, paramShapes: {} };
    }
  }
}

function describeParams(shapes: Record<string, number[]>): string {
  return Object.entries(shapes)
    .map(([k, s]) => `${k} ${formatShape(s)}`)
    .join(', ');
}

function checkParam(where: string, key: string, v: ParamValue, shape: number[]): Float32Array {
  const expected = shape.reduce((a, b) => a * b, 1);
  const hasShape = typeof v === 'object' && v !== null && 'data' in v && 'shape' in v;
  const data = hasShape ? (v as { data: ArrayLike<number> }).data : (v as ArrayLike<number>);
  const given = hasShape ? [...(v as { shape: readonly number[] }).shape] : [data.length];
  const sameShape = hasShape ? given.length === shape.length && given.every((d, i) => d === shape[i]) : data.length === expected;
  if (!sameShape || data.length !== expected) {
    throw new ShapeError(`${where}: ${key} has shape ${formatShape(given)} (${data.length} values), expected ${formatShape(shape)} (${expected} values)`);
  }
  const out = data instanceof Float32Array ? data : Float32Array.from(data);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) throw new ArgumentError(`${where}: ${key}[${i}] is ${out[i]}; weights must be finite`);
  }
  return out;
}

/** He (Kaiming) normal initialisation for weights, zeros for biases, identity for batchnorm. */
function initParam(type: LayerType, key: string, shape: number[], rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (type === 'batchnorm') {
    if (key === 'weight' || key === 'running_var') out.fill(1);
    return out;
  }
  if (key !== 'weight') return out;
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}
