/** TF.js shape ops: Identity (and friends), Reshape, Squeeze, ExpandDims, ConcatV2, Pad, PadV2. */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError, ShapeError, formatShape } from '../../../runtime/errors.js';
import type { OpResult, Prepared } from '../../graph/executor.js';
import { hostInLayout, inTfOrder, ourAxis } from '../layout.js';
import { constInput, runtimeInput, type TfjsContext } from './context.js';

/** Identity, StopGradient, Snapshot: a view; of a constant, the constant itself. */
export function identity(c: TfjsContext): OpResult {
  const v = c.inputs[0];
  if (v?.kind === 'const') return v.host;
  const x = runtimeInput(c, 0);
  return { shape: x, type: 'identity', run: async ([t]) => t!.reshape(t!.shape) };
}

function resolveShape(target: number[], total: number, where: string): number[] {
  const free = target.indexOf(-1);
  const known = target.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = [...target];
  if (free >= 0) out[free] = known > 0 ? total / known : 0;
  if (target.filter((d) => d === -1).length > 1 || out.some((d) => !Number.isInteger(d) || d < 0) || out.reduce((a, b) => a * b, 1) !== total) {
    throw new ShapeError(`${where}: cannot reshape ${total} values to ${formatShape(target)}`);
  }
  return out;
}

export function reshape(c: TfjsContext): Prepared {
  const x = runtimeInput(c, 0);
  const target = [...constInput(c, 1, 'shape').data];
  let shape: number[];
  const perSample = x.slice(1).reduce((a, b) => a * b, 1);
  if (x[0] === -1 && target[0] === -1) shape = [-1, ...resolveShape(target.slice(1), perSample, c.where)];
  else shape = resolveShape(target, perSample * (x[0] === -1 ? c.staticBatch : x[0]!), c.where);
  return {
    shape,
    type: shape.length === 2 && x.length > 2 ? 'flatten' : 'reshape',
    run: ([t]) => inTfOrder(t!, x.length, (v) => v.reshape(resolveShape(target, v.size, c.where))),
  };
}

export function squeeze(c: TfjsContext): Prepared {
  const x = runtimeInput(c, 0);
  const dims = c.attrs.ints('squeeze_dims', []).map((d) => (d < 0 ? d + x.length : d));
  const drop = dims.length ? dims : x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  for (const d of drop) if (x[d] !== 1) throw new ShapeError(`${c.where}: cannot squeeze axis ${d} of ${formatShape(x)}`);
  const shape = x.filter((_, i) => !drop.includes(i));
  return {
    shape,
    type: shape.length === 2 && x.length > 2 ? 'flatten' : 'reshape',
    run: ([t]) => inTfOrder(t!, x.length, (v) => v.reshape(v.shape.filter((_, i) => !drop.includes(i)))),
  };
}

export function expandDims(c: TfjsContext): Prepared {
  const x = runtimeInput(c, 0);
  let axis = constInput(c, 1, 'axis').data[0]!;
  if (axis < 0) axis += x.length + 1;
  if (!(axis >= 0 && axis <= x.length)) throw new FormatError(`${c.where}: axis ${axis} out of range for rank ${x.length}`);
  const shape = [...x.slice(0, axis), 1, ...x.slice(axis)];
  return {
    shape,
    type: 'reshape',
    run: ([t]) => inTfOrder(t!, x.length, (v) => v.reshape([...v.shape.slice(0, axis), 1, ...v.shape.slice(axis)])),
  };
}

export function concat(c: TfjsContext): Prepared {
  const n = c.inputs.length - 1;
  if (n < 1) throw new FormatError(`${c.where}: no inputs to concatenate`);
  const shapes = c.inputs.slice(0, n).map((v) => (v.kind === 'const' ? v.host.shape : v.shape));
  const rank = shapes[0]!.length;
  let axis = constInput(c, n, 'axis').data[0]!;
  if (axis < 0) axis += rank;
  if (!(axis >= 0 && axis < rank) || shapes.some((s) => s.length !== rank)) throw new ShapeError(`${c.where}: cannot concatenate ${shapes.map((s) => formatShape(s)).join(', ')} along axis ${axis}`);
  if (c.inputs.slice(0, n).every((v) => v.kind === 'const')) throw new FormatError(`${c.where}: all inputs are constants (constant folding is not supported)`);
  const shape = [...shapes[0]!];
  shape[axis] = shapes.reduce((a, s) => (a === -1 || s[axis] === -1 ? -1 : a + s[axis]!), 0);
  const consts = c.inputs.slice(0, n).map((v) => (v.kind === 'const' ? c.upload(hostInLayout(v.host, rank)) : null));
  const our = ourAxis(axis, rank);
  return { shape, type: 'concat', run: (args, w) => ops.concat(args.slice(0, n).map((t, i) => w(consts[i] ?? null) ?? t!), our) };
}

export function pad(c: TfjsContext): Prepared {
  const x = runtimeInput(c, 0);
  const p = constInput(c, 1, 'paddings');
  if (p.shape.join() !== `${x.length},2`) throw new ShapeError(`${c.where}: paddings ${formatShape(p.shape)} must be [${x.length}, 2]`);
  if (c.node.op === 'PadV2' && constInput(c, 2, 'constant value').data[0] !== 0) throw new FormatError(`${c.where}: only zero padding is supported`);
  const tfPads = Array.from({ length: x.length }, (_, i) => [p.data[2 * i]!, p.data[2 * i + 1]!] as [number, number]);
  if (tfPads.flat().some((v) => v < 0)) throw new FormatError(`${c.where}: negative paddings are not supported`);
  const shape = x.map((d, i) => (d === -1 ? -1 : d + tfPads[i]![0] + tfPads[i]![1]));
  const pads = x.map((_, i) => tfPads[x.length === 4 ? [0, 3, 1, 2][i]! : i]!);
  return {
    shape,
    type: 'pad',
    run: ([t]) => ops.pad(t!, [...pads.map((q) => q[0]), ...pads.map((q) => q[1])]),
  };
}
