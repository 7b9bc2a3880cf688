/**
 * ONNX shape ops: Identity, Dropout, Constant, Shape, Size, Gather, Cast, Unsqueeze, Squeeze,
 * Concat, Reshape, Flatten, Transpose, Slice, ConstantOfShape, Expand. On constants they fold on
 * the CPU at load time (the shape arithmetic PyTorch emits); on computed values they are views or
 * differentiable copies.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError, ShapeError, formatShape } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult, Prepared } from '../../graph/executor.js';
import { shapeElements, type HostTensor } from '../../graph/host.js';
import { using } from '../../graph/ops.js';
import { hostCast, hostConcat, hostGather, hostReshape, hostSlice, permuteHost, sliceBounds } from '../fold.js';
import { DATA_TYPE_NAMES, DATA_TYPES } from '../schema.js';
import { decodeTensorSync } from '../tensors.js';
import { allConst, BATCH, constInput, intValues, ints, normalizeAxes, optionalConst, runtimeInput, shapeOfInput, type OnnxContext, type OnnxOpBuilder } from './context.js';

/** Identity (and Dropout in inference): a view; of a constant, the constant. */
export function identity(type: 'identity' | 'dropout'): OnnxOpBuilder {
  return (c) => {
    const v = c.inputs[0];
    if (type === 'dropout') {
      const training = optionalConst(c, 2, 'training_mode');
      if (training && training.data[0]) throw new FormatError(`${c.where}: training_mode = true is not supported (inference only)`);
    }
    if (v?.kind === 'const') return v.host;
    const x = runtimeInput(c, 0);
    return { shape: x, type, run: async ([t]) => t!.reshape(t!.shape) };
  };
}

/** Constant: its value attribute, as a host tensor. */
export function constant(c: OnnxContext): OpResult {
  const t = c.attrs.tensor('value');
  if (t) return decodeTensorSync(t, c.limits, `${c.where}: value`);
  if (c.attrs.has('value_float')) return { dtype: 'float32', shape: [], data: Float32Array.of(c.attrs.float('value_float')) };
  if (c.attrs.has('value_floats')) {
    const f = c.attrs.floats('value_floats') ?? [];
    return { dtype: 'float32', shape: [f.length], data: Float32Array.from(f) };
  }
  if (c.attrs.has('value_int')) return ints([c.attrs.int('value_int')], []);
  if (c.attrs.has('value_ints')) return ints(c.attrs.ints('value_ints'));
  throw new FormatError(`${c.where}: only tensor, float and int values are supported (${c.attrs.names().join(', ') || 'no value'})`);
}

/** Shape: the input's shape (the dynamic batch as BATCH), with opset 15's start and end. */
export function shape(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0).map((d) => (d === -1 ? BATCH : d));
  const rank = s.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(c.attrs.int('start', 0));
  const end = clamp(c.attrs.int('end', rank));
  return ints(s.slice(start, Math.max(start, end)));
}

/** Size: the input's element count (a computed value needs a static batch). */
export function size(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0);
  if (s.includes(-1)) throw new FormatError(`${c.where}: the size of a value with a dynamic batch is not known at load time`);
  return ints([shapeElements(s)], []);
}

/** Gather on constants (folded), or of a computed value at constant indices (slices, concatenated). */
export function gather(c: OnnxContext): OpResult {
  const data = c.inputs[0];
  const indices = constInput(c, 1, 'indices');
  const rank = shapeOfInput(c, 0).length;
  const [axis] = normalizeAxes(c, [c.attrs.int('axis', 0)], rank, 'axis');
  if (data?.kind === 'const') return hostGather(data.host, indices, axis!, c.where);
  const x = runtimeInput(c, 0);
  if (axis === 0) throw new FormatError(`${c.where}: gathering along the batch axis is not supported`);
  const dim = x[axis!]!;
  const idx = intValues(indices, c, 'indices').map((i) => (i < 0 ? i + dim : i));
  if (idx.some((i) => i < 0 || i >= dim)) throw new FormatError(`${c.where}: indices ${JSON.stringify(idx.slice(0, 10))} out of range for a dimension of ${dim}`);
  const outShape = [...x.slice(0, axis), ...indices.shape, ...x.slice(axis! + 1)];
  // Runs of consecutive indices become one slice each.
  const runs: [number, number][] = [];
  for (const i of idx) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === i) last[1]++;
    else runs.push([i, 1]);
  }
  return {
    shape: outShape,
    type: 'gather',
    run: async ([t]) => {
      const parts: Tensor[] = [];
      try {
        for (const [begin, n] of runs) parts.push(await ops.slice(t!, t!.shape.map((_, d) => (d === axis ? begin : 0)), t!.shape.map((s, d) => (d === axis ? n : s))));
        const joined = parts.length === 1 ? parts.pop()! : await ops.concat(parts, axis!);
        return using(joined, async (j) => j.reshape([t!.shape[0]!, ...outShape.slice(1)]));
      } finally {
        for (const p of parts) p.dispose();
      }
    },
  };
}

/** Cast: constants converted; a computed value may only be cast between float types (all float32 here). */
export function cast(c: OnnxContext): OpResult {
  const to = c.attrs.int('to');
  const toFloat = to === DATA_TYPES.FLOAT || to === DATA_TYPES.DOUBLE || to === DATA_TYPES.FLOAT16 || to === DATA_TYPES.BFLOAT16;
  const v = c.inputs[0];
  if (v?.kind === 'const') return hostCast(v.host, toFloat, to === DATA_TYPES.BOOL);
  const x = runtimeInput(c, 0);
  if (to !== DATA_TYPES.FLOAT && to !== DATA_TYPES.DOUBLE) throw new FormatError(`${c.where}: casting a computed value to ${DATA_TYPE_NAMES.get(to) ?? to} is not supported (computed values are float32; float64 is kept as float32)`);
  return { shape: x, type: 'identity', run: async ([t]) => t!.reshape(t!.shape) };
}

/** Axes from the attribute (before opset 13) or the second input. */
function axesArg(c: OnnxContext, opsetWithInput: number): number[] | undefined {
  if (c.opset >= opsetWithInput) {
    const a = optionalConst(c, 1, 'axes');
    return a ? intValues(a, c, 'axes') : undefined;
  }
  return c.attrs.has('axes') ? c.attrs.ints('axes') : undefined;
}

/**
 * A reshape of a computed value: a view. When the batch stays the first axis the view follows the
 * batch the model is run with; otherwise (a declared batch merged into other axes) the shape is
 * fixed and the model runs only at its declared batch size.
 */
function view(x: number[], shape: number[], type = 'reshape'): Prepared {
  const keepsBatch = x[0] === -1 ? shape[0] === -1 : shape[0] === x[0] && shapeElements(x.slice(1)) === shapeElements(shape.slice(1));
  return {
    shape,
    type: shape.length === 2 && x.length > 2 ? 'flatten' : type,
    run: async ([t]) => {
      if (keepsBatch) return t!.reshape([t!.shape[0]!, ...shape.slice(1)]);
      if (t!.shape[0] !== x[0]) throw new ShapeError(`a reshape of [${x.join(', ')}] to [${shape.join(', ')}] merges the batch axis: the model runs at batch size ${x[0]} only, got ${t!.shape[0]}`);
      return t!.reshape(shape);
    },
  };
}

function batchKept(c: OnnxContext, x: number[], shape: number[]): void {
  if (x[0] === -1 && shape[0] !== -1) throw new FormatError(`${c.where}: the result ${formatShape(shape)} moves or removes the dynamic batch axis`);
}

export function unsqueeze(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0);
  const given = axesArg(c, 13);
  if (!given) throw new FormatError(`${c.where}: no axes`);
  const axes = normalizeAxes(c, given, s.length + given.length).sort((a, b) => a - b);
  const out = [...s];
  for (const a of axes) out.splice(a, 0, 1);
  const v = c.inputs[0]!;
  if (v.kind === 'const') return hostReshape(v.host, out);
  const x = runtimeInput(c, 0);
  batchKept(c, x, out);
  return view(x, out);
}

export function squeeze(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0);
  const given = axesArg(c, 13);
  const axes = given ? normalizeAxes(c, given, s.length) : s.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  for (const a of axes) if (s[a] !== 1) throw new FormatError(`${c.where}: cannot squeeze axis ${a} of ${formatShape(s)}`);
  const out = s.filter((_, i) => !axes.includes(i));
  const v = c.inputs[0]!;
  if (v.kind === 'const') return hostReshape(v.host, out);
  const x = runtimeInput(c, 0);
  batchKept(c, x, out);
  return view(x, out);
}

export function concat(c: OnnxContext): OpResult {
  const present = c.inputs.filter((v) => v !== undefined);
  if (!present.length) throw new FormatError(`${c.where}: no inputs to concatenate`);
  const shapes = present.map((v) => (v!.kind === 'const' ? v!.host.shape : v!.shape));
  const rank = shapes[0]!.length;
  const [axis] = normalizeAxes(c, [c.attrs.int('axis')], rank, 'axis');
  if (allConst(c)) return hostConcat(present.map((v) => (v as { host: HostTensor }).host), axis!, c.where);
  if (shapes.some((s) => s.length !== rank || s.some((d, i) => i !== axis && d !== shapes[0]![i] && !(i === 0 && (d === -1 || shapes[0]![0] === -1))))) {
    throw new FormatError(`${c.where}: cannot concatenate ${shapes.map((s) => formatShape(s)).join(', ')} along axis ${axis}`);
  }
  if (axis === 0) throw new FormatError(`${c.where}: concatenating along the batch axis is not supported`);
  // A constant joined to computed values is repeated over the batch when it has one image's worth.
  const uploads = c.inputs.map((v) => (v?.kind === 'const' ? c.upload(v.host) : null));
  const out = [...shapes[0]!];
  out[0] = shapes.some((s) => s[0] === -1) ? -1 : shapes[0]![0]!;
  out[axis!] = shapes.reduce((a, s) => a + s[axis!]!, 0);
  return {
    shape: out,
    type: 'concat',
    run: async (args, w) => {
      const n = args.find((t) => t)!.shape[0]!;
      const temps: Tensor[] = [];
      try {
        const parts: Tensor[] = [];
        for (let i = 0; i < c.inputs.length; i++) {
          if (!c.inputs[i]) continue;
          const u = w(uploads[i] ?? null);
          if (!u) parts.push(args[i]!);
          else if (u.shape[0] === n) parts.push(u);
          else {
            const b = await ops.broadcastTo(u, [n, ...u.shape.slice(1)]);
            temps.push(b);
            parts.push(b);
          }
        }
        return await ops.concat(parts, axis!);
      } finally {
        for (const t of temps) t.dispose();
      }
    },
  };
}

/**
 * Reshape: the target may hold 0 (copy the input's dimension, unless allowzero), −1 (inferred) and
 * BATCH (the dynamic batch). A target that spells out a batch of 1 for a value with a dynamic
 * batch (an export traced at batch 1) keeps the batch dynamic when the rest matches one sample.
 */
export function reshape(c: OnnxContext): OpResult {
  const target = intValues(constInput(c, 1, 'shape'), c, 'shape');
  const allowZero = c.attrs.int('allowzero', 0) === 1;
  const v = c.inputs[0]!;
  const inShape = v.kind === 'const' ? v.host.shape : v.shape;
  const resolve = (input: readonly number[], batch: number): number[] => {
    const dims = target.map((d, i) => (d === BATCH ? batch : d === 0 && !allowZero ? input[i]! : d));
    const total = shapeElements(input.map((d) => (d === -1 ? batch : d)));
    const free = dims.indexOf(-1);
    if (dims.filter((d) => d === -1).length > 1 || dims.some((d) => d < -1)) throw new FormatError(`${c.where}: the target shape ${JSON.stringify(target)} is not valid`);
    const known = dims.reduce((a, d) => (d === -1 ? a : a * d), 1);
    if (free >= 0) dims[free] = known > 0 ? total / known : 0;
    if (dims.some((d) => !Number.isInteger(d)) || shapeElements(dims) !== total) {
      throw new FormatError(`${c.where}: cannot reshape ${formatShape(input)} (${total} values) to ${JSON.stringify(target)}`);
    }
    return dims;
  };
  if (v.kind === 'const') return hostReshape(v.host, resolve(inShape, 1));
  const x = runtimeInput(c, 0);
  if (x[0] !== -1) return view(x, resolve(x, x[0]!));
  const one = resolve(x, 1);
  const two = resolve(x, 2);
  if (one[0] === 1 && two[0] === 2 && one.slice(1).every((d, i) => d === two[i + 1])) return view(x, [-1, ...one.slice(1)]);
  if (target[0] === 1 && one.every((d, i) => d === two[i])) {
    // Traced at batch 1: [1, …] with the per-sample size of one image.
    const rest = resolve(x.map((d, i) => (i === 0 ? 1 : d)), 1);
    return view(x, [-1, ...rest.slice(1)]);
  }
  throw new FormatError(`${c.where}: the reshape to ${JSON.stringify(target)} mixes the dynamic batch into other axes (${formatShape(x)} → ${formatShape(one)} for one image)`);
}

export function flatten(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0);
  const rank = s.length;
  let axis = c.attrs.int('axis', 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) throw new FormatError(`${c.where}: axis ${axis} is not valid for rank ${rank}`);
  const v = c.inputs[0]!;
  if (v.kind === 'const') return hostReshape(v.host, [shapeElements(s.slice(0, axis)), shapeElements(s.slice(axis))]);
  const x = runtimeInput(c, 0);
  if (axis === 0 || shapeElements(x.slice(1, axis)) !== 1) throw new FormatError(`${c.where}: flattening with axis ${axis} would merge the batch axis with others; only axis 1 (or axes of size 1 before it) is supported`);
  return view(x, [x[0]!, shapeElements(x.slice(axis))], 'flatten');
}

export function transpose(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0);
  const perm = c.attrs.ints('perm', s.map((_, i) => s.length - 1 - i));
  if (perm.length !== s.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new FormatError(`${c.where}: perm ${JSON.stringify(perm)} is not a permutation of ${s.length} axes`);
  const v = c.inputs[0]!;
  if (v.kind === 'const') return permuteHost(v.host, perm);
  const x = runtimeInput(c, 0);
  const out = perm.map((p) => x[p]!);
  batchKept(c, x, out);
  return { shape: out, type: 'transpose', run: ([t]) => ops.transpose(t!, perm) };
}

/** Slice (attributes before opset 10, inputs after): folded on constants; steps of 1 on computed values. */
export function slice(c: OnnxContext): OpResult {
  const s = shapeOfInput(c, 0);
  const rank = s.length;
  let starts: number[];
  let ends: number[];
  let axes: number[];
  let steps: number[];
  if (c.opset < 10) {
    starts = c.attrs.ints('starts');
    ends = c.attrs.ints('ends');
    axes = c.attrs.ints('axes', starts.map((_, i) => i));
    steps = starts.map(() => 1);
  } else {
    starts = intValues(constInput(c, 1, 'starts'), c, 'starts');
    ends = intValues(constInput(c, 2, 'ends'), c, 'ends');
    const a = optionalConst(c, 3, 'axes');
    const st = optionalConst(c, 4, 'steps');
    axes = a ? intValues(a, c, 'axes') : starts.map((_, i) => i);
    steps = st ? intValues(st, c, 'steps') : starts.map(() => 1);
  }
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) throw new FormatError(`${c.where}: starts, ends, axes and steps differ in length`);
  axes = normalizeAxes(c, axes, rank);
  if (steps.some((t) => t === 0)) throw new FormatError(`${c.where}: a step of 0`);
  const b = s.map(() => 0);
  const e = [...s];
  const st = s.map(() => 1);
  const v = c.inputs[0]!;
  axes.forEach((a, k) => {
    if (s[a] === -1) {
      if (starts[k] === 0 && ends[k]! >= 2 ** 31 - 1 && steps[k] === 1) return; // the whole dynamic batch
      throw new FormatError(`${c.where}: slicing the dynamic batch axis is not supported`);
    }
    [b[a], e[a]] = sliceBounds(starts[k]!, ends[k]!, steps[k]!, s[a]!);
    st[a] = steps[k]!;
    if (a === 0 && v.kind === 'runtime' && (b[0] !== 0 || e[0] !== s[0] || st[0] !== 1)) throw new FormatError(`${c.where}: slicing the batch axis is not supported`);
  });
  if (v.kind === 'const') return hostSlice(v.host, b, e, st);
  const x = runtimeInput(c, 0);
  if (st.some((t) => t !== 1)) throw new FormatError(`${c.where}: slices of computed values with steps other than 1 are not supported`);
  const out = x.map((d, i) => (d === -1 ? -1 : Math.max(0, e[i]! - b[i]!)));
  if (out.some((d) => d === 0)) throw new FormatError(`${c.where}: the slice of ${formatShape(x)} is empty`);
  return {
    shape: out,
    type: 'slice',
    run: ([t]) => ops.slice(t!, b, out.map((d, i) => (i === 0 ? t!.shape[0]! : d))),
  };
}

export function constantOfShape(c: OnnxContext): OpResult {
  const s = intValues(constInput(c, 0, 'shape'), c, 'shape');
  if (s.includes(BATCH)) throw new FormatError(`${c.where}: a constant shaped by the dynamic batch size is not supported`);
  const n = shapeElements(s);
  if (s.some((d) => d < 0) || n > c.limits.maxElements) throw new FormatError(`${c.where}: shape ${JSON.stringify(s)} is not valid or exceeds the limit of ${c.limits.maxElements} values`);
  const t = c.attrs.tensor('value');
  const value = t ? decodeTensorSync(t, c.limits, `${c.where}: value`) : { dtype: 'float32' as const, shape: [1], data: Float32Array.of(0) };
  const data = value.data instanceof Float32Array ? new Float32Array(n).fill(value.data[0] ?? 0) : new Int32Array(n).fill(value.data[0] ?? 0);
  return { dtype: value.dtype, shape: s, data };
}

export function expand(c: OnnxContext): OpResult {
  const target = intValues(constInput(c, 1, 'shape'), c, 'shape').map((d) => (d === BATCH ? -1 : d));
  const v = c.inputs[0]!;
  const s = v.kind === 'const' ? v.host.shape : v.shape;
  const rank = Math.max(s.length, target.length);
  const out = Array.from({ length: rank }, (_, i) => {
    const a = s[s.length - rank + i] ?? 1;
    const t = target[target.length - rank + i] ?? 1;
    if (a !== t && a !== 1 && t !== 1) throw new FormatError(`${c.where}: ${formatShape(s)} cannot be expanded to ${JSON.stringify(target)}`);
    return a === 1 ? t : a;
  });
  if (v.kind === 'const') {
    if (out.includes(-1)) throw new FormatError(`${c.where}: expanding a constant over the dynamic batch is not supported`);
    if (shapeElements(out) > c.limits.maxElements) throw new FormatError(`${c.where}: the expanded shape ${formatShape(out)} exceeds the limit of ${c.limits.maxElements} values`);
    return expandHost(v.host, out);
  }
  const x = runtimeInput(c, 0);
  if (out.length !== x.length || out[0] !== x[0]) throw new FormatError(`${c.where}: expanding ${formatShape(x)} to ${formatShape(out)} changes the batch axis`);
  if (out.every((d, i) => d === x[i])) return { shape: x, type: 'identity', run: async ([t]) => t!.reshape(t!.shape) };
  return { shape: out, type: 'expand', run: ([t]) => ops.broadcastTo(t!, out.map((d, i) => (i === 0 ? t!.shape[0]! : d))) };
}

/** h broadcast to `shape` on the CPU. */
function expandHost(h: HostTensor, shape: number[]): HostTensor {
  const rank = shape.length;
  const padded = [...new Array<number>(rank - h.shape.length).fill(1), ...h.shape];
  const n = shapeElements(shape);
  const out = h.data instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
  const st = padded.map((_, i) => shapeElements(padded.slice(i + 1)));
  const ost = shape.map((_, i) => shapeElements(shape.slice(i + 1)));
  for (let i = 0; i < n; i++) {
    let src = 0;
    let r = i;
    for (let d = 0; d < rank; d++) {
      const k = Math.floor(r / ost[d]!);
      r -= k * ost[d]!;
      if (padded[d] !== 1) src += k * st[d]!;
    }
    out[i] = h.data[src]!;
  }
  return { dtype: h.dtype, shape, data: out };
}
