/**
 * CPU versions of the ops PyTorch's exporter emits around shapes (Shape → Gather → Unsqueeze →
 * Concat → Reshape, Cast, Slice, arithmetic), run once at load time on constants.
 */
import { FormatError, formatShape } from '../../runtime/errors.js';
import { broadcastShapes, permuteHost, shapeElements, type HostTensor } from '../graph/host.js';
import { BATCH } from './ops/context.js';

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

/** NumPy broadcasting of static shapes (graph/host.ts). */
export const broadcast = broadcastShapes;

function hasBatch(h: HostTensor): boolean {
  return h.dtype !== 'float32' && h.data.includes(BATCH);
}

/** f applied elementwise to broadcast inputs, on the CPU; the result is float when `float`, else truncated to int32. */
export function hostMap(inputs: readonly HostTensor[], f: (...v: number[]) => number, float: boolean, where: string): HostTensor {
  const shape = inputs.map((h) => h.shape).reduce((a, b) => broadcast(a, b, where));
  const n = shapeElements(shape);
  const out = float ? new Float32Array(n) : new Int32Array(n);
  const ss = inputs.map((h) => broadcastStrides(h.shape, shape));
  const st = strides(shape);
  const idx = new Array<number>(inputs.length);
  const vals = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    idx.fill(0);
    let r = i;
    for (let d = 0; d < shape.length; d++) {
      const k = Math.floor(r / st[d]!);
      r -= k * st[d]!;
      for (let j = 0; j < inputs.length; j++) idx[j] += k * ss[j]![d]!;
    }
    for (let j = 0; j < inputs.length; j++) vals[j] = inputs[j]!.data[idx[j]!]!;
    const v = f(...vals);
    out[i] = float ? v : Math.trunc(v);
  }
  return { dtype: float ? 'float32' : 'int32', shape, data: out };
}

/** a OP b elementwise with broadcasting, on the CPU (ints stay ints unless either side is float). */
export function hostBinary(a: HostTensor, b: HostTensor, f: (x: number, y: number) => number, where: string, opName: string): HostTensor {
  if (hasBatch(a) || hasBatch(b)) {
    throw new FormatError(`${where}: ${opName} on a shape that holds the dynamic batch size is not supported; export the model with a fixed batch size, or use torch.flatten / x.view(x.size(0), -1) forms`);
  }
  const out = hostMap([a, b], f, a.dtype === 'float32' || b.dtype === 'float32', where);
  return a.dtype === 'bool' && b.dtype === 'bool' ? { ...out, dtype: 'bool' } : out;
}

function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const s = strides(shape);
  const lead = out.length - shape.length;
  return out.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : s[i - lead]!));
}

/** Gather along `axis` with integer indices (negative counting from the end). */
export function hostGather(data: HostTensor, indices: HostTensor, axis: number, where: string): HostTensor {
  const dim = data.shape[axis]!;
  const idx = [...indices.data].map((i) => (i < 0 ? i + dim : i));
  if (idx.some((i) => !Number.isInteger(i) || i < 0 || i >= dim)) throw new FormatError(`${where}: gather indices ${JSON.stringify([...indices.data].slice(0, 10))} out of range for a dimension of ${dim}`);
  const outer = shapeElements(data.shape.slice(0, axis));
  const inner = shapeElements(data.shape.slice(axis + 1));
  const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  const out = data.data instanceof Float32Array ? new Float32Array(shapeElements(shape)) : new Int32Array(shapeElements(shape));
  let o = 0;
  for (let p = 0; p < outer; p++) for (const i of idx) for (let q = 0; q < inner; q++) out[o++] = data.data[(p * dim + i) * inner + q]!;
  return { dtype: data.dtype, shape, data: out };
}

/** Concatenation along `axis`. */
export function hostConcat(parts: readonly HostTensor[], axis: number, where: string): HostTensor {
  const first = parts[0]!;
  const rank = first.shape.length;
  for (const p of parts) {
    if (p.shape.length !== rank || p.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new FormatError(`${where}: cannot concatenate ${parts.map((x) => formatShape(x.shape)).join(', ')} along axis ${axis}`);
    }
  }
  const shape = [...first.shape];
  shape[axis] = parts.reduce((a, p) => a + p.shape[axis]!, 0);
  const float = parts.some((p) => p.dtype === 'float32');
  const out = float ? new Float32Array(shapeElements(shape)) : new Int32Array(shapeElements(shape));
  const outer = shapeElements(first.shape.slice(0, axis));
  let o = 0;
  for (let p = 0; p < outer; p++) {
    for (const part of parts) {
      const block = shapeElements(part.shape.slice(axis));
      for (let q = 0; q < block; q++) out[o++] = part.data[p * block + q]!;
    }
  }
  return { dtype: float ? 'float32' : first.dtype, shape, data: out };
}

/** A strided slice: per axis, start, end (exclusive) and step, already clamped as ONNX's Slice defines. */
export function hostSlice(h: HostTensor, starts: number[], ends: number[], steps: number[]): HostTensor {
  const shape = h.shape.map((_, d) => Math.max(0, Math.ceil((ends[d]! - starts[d]!) / steps[d]!)));
  const st = strides(h.shape);
  const n = shapeElements(shape);
  const out = h.data instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
  const ost = strides(shape);
  for (let i = 0; i < n; i++) {
    let src = 0;
    let r = i;
    for (let d = 0; d < shape.length; d++) {
      const k = Math.floor(r / ost[d]!);
      r -= k * ost[d]!;
      src += (starts[d]! + k * steps[d]!) * st[d]!;
    }
    out[i] = h.data[src]!;
  }
  return { dtype: h.dtype, shape, data: out };
}

/** ONNX Slice's clamping of one axis: the start, end and step actually walked for a dimension of `dim`. */
export function sliceBounds(start: number, end: number, step: number, dim: number): [number, number] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
  } else {
    s = clamp(s, 0, dim - 1);
    e = clamp(e, -1, dim - 1);
  }
  return [s, e];
}

export { permuteHost };

/** A copy of h with a new shape (same values). */
export function hostReshape(h: HostTensor, shape: number[]): HostTensor {
  return { ...h, shape };
}

/** Cast to ONNX data type `to`: floats to float32, integers truncated toward zero, bool as 0/1. */
export function hostCast(h: HostTensor, toFloat: boolean, toBool: boolean): HostTensor {
  if (toFloat) return { dtype: 'float32', shape: [...h.shape], data: Float32Array.from(h.data) };
  if (hasBatch(h)) return { ...h, dtype: 'int32' };
  const data = Int32Array.from(h.data, (v) => (toBool ? (v !== 0 ? 1 : 0) : Math.trunc(v)));
  return { dtype: toBool ? 'bool' : 'int32', shape: [...h.shape], data };
}
