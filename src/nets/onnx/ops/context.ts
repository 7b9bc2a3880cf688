/** What an ONNX op builder gets, and the helpers the builders share. */
import { FormatError, formatShape } from '../../../runtime/errors.js';
import type { DeviceConstant, OpResult, Value } from '../../graph/executor.js';
import type { GraphLimits, HostTensor } from '../../graph/host.js';
import type { OnnxAttrs } from '../attributes.js';
import type { OnnxNodeProto } from '../schema.js';

export interface OnnxContext {
  node: OnnxNodeProto;
  op: string;
  attrs: OnnxAttrs;
  /** "model: node 'name' (Op)" for messages. */
  where: string;
  /** The node's inputs; undefined where an optional input is left out (''). */
  inputs: (Value | undefined)[];
  /** The default domain's opset version the model imports. */
  opset: number;
  limits: GraphLimits;
  /** Uploads a constant (kept until the model is disposed); a step's `run` resolves the handle. */
  upload(h: HostTensor, shape?: number[]): DeviceConstant;
}

/** Builds the step of one node, or folds it into a constant. */
export type OnnxOpBuilder = (c: OnnxContext) => OpResult;

/**
 * The batch size in a folded shape value: Shape of a value whose batch is dynamic gives this in
 * place of the batch, so that a Reshape target built from it (PyTorch's x.view(x.size(0), -1))
 * keeps the batch dynamic. Arithmetic on it is refused.
 */
export const BATCH = -(2 ** 31);

export function runtimeInput(c: OnnxContext, i: number, rank?: number | readonly number[]): number[] {
  const v = c.inputs[i];
  if (!v) throw new FormatError(`${c.where}: input ${i} is missing`);
  if (v.kind !== 'runtime') throw new FormatError(`${c.where}: input ${i} is a constant; a value computed from the model's input is expected there`);
  const ranks = rank === undefined ? undefined : typeof rank === 'number' ? [rank] : rank;
  if (ranks && !ranks.includes(v.shape.length)) {
    throw new FormatError(`${c.where}: input ${i} must have rank ${ranks.join(' or ')}, got shape ${formatShape(v.shape)}`);
  }
  return v.shape;
}

export function constInput(c: OnnxContext, i: number, what: string): HostTensor {
  const v = c.inputs[i];
  if (!v) throw new FormatError(`${c.where}: the ${what} (input ${i}) is missing`);
  if (v.kind !== 'const') throw new FormatError(`${c.where}: the ${what} (input ${i}) must be a constant (an initialiser or computed from constants)`);
  return v.host;
}

export function optionalConst(c: OnnxContext, i: number, what: string): HostTensor | undefined {
  return c.inputs[i] ? constInput(c, i, what) : undefined;
}

/** The shape of input i, constant or computed. */
export function shapeOfInput(c: OnnxContext, i: number): number[] {
  const v = c.inputs[i];
  if (!v) throw new FormatError(`${c.where}: input ${i} is missing`);
  return v.kind === 'const' ? v.host.shape : v.shape;
}

/** True when every present input is a constant (the node folds). */
export function allConst(c: OnnxContext): boolean {
  return c.inputs.every((v) => !v || v.kind === 'const');
}

/** A constant's values as integers (axes, shapes, pads). */
export function intValues(h: HostTensor, c: OnnxContext, what: string): number[] {
  const out = [...h.data];
  if (out.some((v) => !Number.isSafeInteger(v))) throw new FormatError(`${c.where}: the ${what} must be integers, got ${JSON.stringify(out.slice(0, 10))}`);
  return out;
}

/** Axes normalised to [0, rank), unique, checked. */
export function normalizeAxes(c: OnnxContext, axes: readonly number[], rank: number, what = 'axes'): number[] {
  const out = axes.map((a) => (a < 0 ? a + rank : a));
  if (out.some((a) => !Number.isInteger(a) || a < 0 || a >= rank) || new Set(out).size !== out.length) {
    throw new FormatError(`${c.where}: ${what} ${JSON.stringify(axes)} are not valid for rank ${rank}`);
  }
  return out;
}

/** A host tensor of int32 values. */
export function ints(values: readonly number[], shape: number[] = [values.length]): HostTensor {
  return { dtype: 'int32', shape, data: Int32Array.from(values) };
}

/** The number of elements of a per-sample shape (the batch, −1, not counted). */
export function perSampleSize(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}
