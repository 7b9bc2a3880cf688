/** What a TF.js op builder gets, and the checks the builders share. */
import { samePadding, type Activation } from '../../../kernels/common.js';
import { FormatError, ShapeError, formatShape } from '../../../runtime/errors.js';
import type { DeviceConstant, OpResult, Value } from '../../graph/executor.js';
import type { HostTensor } from '../../graph/host.js';
import type { Attrs, TfjsNode } from '../format.js';

export interface TfjsContext {
  node: TfjsNode;
  attrs: Attrs;
  /** "model: node 'name' (Op)" for messages. */
  where: string;
  inputs: Value[];
  /** Uploads a constant (kept until the model is disposed); a step's `run` resolves the handle. */
  upload(h: HostTensor, shape?: number[]): DeviceConstant;
  /** The batch size the graph declares, for reshapes that spell it out (1 if open). */
  staticBatch: number;
}

/** Builds the step of one node (or folds it into a constant). */
export type TfjsOpBuilder = (c: TfjsContext) => OpResult;

export function runtimeInput(c: TfjsContext, i: number, rank?: number): number[] {
  const v = c.inputs[i];
  if (!v) throw new FormatError(`${c.where}: missing input ${i}`);
  if (v.kind !== 'runtime') throw new FormatError(`${c.where}: input ${i} is a constant; only computed values are supported there`);
  if (rank !== undefined && v.shape.length !== rank) {
    throw new ShapeError(`${c.where}: input ${i} must have rank ${rank} (TF shape), got ${formatShape(v.shape)}`);
  }
  return v.shape;
}

export function constInput(c: TfjsContext, i: number, what: string): HostTensor {
  const v = c.inputs[i];
  if (!v || v.kind !== 'const') throw new FormatError(`${c.where}: the ${what} (input ${i}) must be a constant`);
  return v.host;
}

export function checkNhwc(c: TfjsContext): void {
  const f = c.attrs.str('data_format', 'NHWC');
  if (f !== 'NHWC') throw new FormatError(`${c.where}: data_format '${f}' is not supported (NHWC only)`);
}

const FUSED_ACTIVATIONS = new Map<string, Activation>([
  ['Relu', 'relu'],
  ['Relu6', 'relu6'],
  ['LeakyRelu', 'leakyrelu'],
  ['Sigmoid', 'sigmoid'],
  ['Tanh', 'tanh'],
]);

/** The fused ops of a _Fused* node: whether a bias is added, and the activation. */
export function fusedOps(c: TfjsContext): { bias: boolean; activation: Activation; alpha: number } {
  const list = c.attrs.strs('fused_ops');
  let bias = false;
  let activation: Activation = 'none';
  for (const [k, f] of list.entries()) {
    if (k === 0 && f === 'BiasAdd') bias = true;
    else if (k === list.length - 1 && FUSED_ACTIVATIONS.has(f) && activation === 'none') activation = FUSED_ACTIVATIONS.get(f)!;
    else {
      throw new FormatError(`${c.where}: fused op '${f}' (fused_ops ${JSON.stringify(list)}) is not supported; supported: BiasAdd then one of ${[...FUSED_ACTIVATIONS.keys()].join(', ')}`);
    }
  }
  const extra = c.inputs.length - 2;
  if (extra !== (bias ? 1 : 0)) throw new FormatError(`${c.where}: expected ${bias ? 1 : 0} fused argument(s), got ${extra}`);
  return { bias, activation, alpha: c.attrs.float('leakyrelu_alpha', 0.2) };
}

export function spatialPadding(c: TfjsContext, hw: [number, number], kernel: [number, number], stride: [number, number], dilation: [number, number]): [number, number, number, number] {
  const p = c.attrs.str('padding');
  if (p === 'SAME') return samePadding(hw, kernel, stride, dilation);
  if (p === 'VALID') return [0, 0, 0, 0];
  if (p === 'EXPLICIT') {
    const e = c.attrs.ints('explicit_paddings');
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7] || e.some((v) => v < 0)) throw new FormatError(`${c.where}: explicit_paddings ${JSON.stringify(e)} must pad only H and W`);
    return [e[2]!, e[3]!, e[4]!, e[5]!];
  }
  throw new FormatError(`${c.where}: padding '${p}' is not supported (SAME, VALID, EXPLICIT)`);
}

export function convOut(n: number, k: number, s: number, d: number, before: number, after: number): number {
  return Math.floor((n + before + after - d * (k - 1) - 1) / s) + 1;
}

/** Checks a list of positive integers (strides, window sizes) read from a node. */
export function positive(c: TfjsContext, name: string, v: number[], length: number): number[] {
  if (v.length !== length || v.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new FormatError(`${c.where}: ${name} ${JSON.stringify(v)} must be ${length} positive integers`);
  return v;
}
