/**
 * ONNX Pad (attributes before opset 11, inputs after; axes since 18): constant (any value), reflect
 * and edge modes, negative pads (crops), on the differentiable `pad` op.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { OpResult } from '../../graph/executor.js';
import { intValues, normalizeAxes, optionalConst, runtimeInput, type OnnxContext } from './context.js';

export function pad(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0);
  const rank = x.length;
  const mode = c.attrs.string('mode', 'constant');
  let pads: number[];
  let value = 0;
  let axes = x.map((_, i) => i);
  if (c.opset < 11) {
    pads = c.attrs.ints('pads');
    value = c.attrs.float('value', 0);
  } else {
    const p = optionalConst(c, 1, 'pads');
    if (!p) throw new FormatError(`${c.where}: no pads`);
    pads = intValues(p, c, 'pads');
    const v = optionalConst(c, 2, 'constant_value');
    if (v && v.data.length) value = v.data[0]!;
    const a = optionalConst(c, 3, 'axes');
    if (a) axes = normalizeAxes(c, intValues(a, c, 'axes'), rank);
  }
  if (pads.length !== 2 * axes.length) throw new FormatError(`${c.where}: ${pads.length} pads for ${axes.length} axes`);
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') throw new FormatError(`${c.where}: mode '${mode}' is not supported (constant, reflect, edge)`);
  if (!Number.isFinite(value)) throw new FormatError(`${c.where}: the constant value ${value} is not finite`);
  const before = new Array<number>(rank).fill(0);
  const after = new Array<number>(rank).fill(0);
  axes.forEach((a, k) => {
    before[a] = pads[k]!;
    after[a] = pads[k + axes.length]!;
  });
  if (before[0] !== 0 || after[0] !== 0) throw new FormatError(`${c.where}: padding the batch axis is not supported`);
  const shape = x.map((d, i) => (i === 0 ? d : d + before[i]! + after[i]!));
  for (let i = 1; i < rank; i++) {
    if (shape[i]! < 1) throw new FormatError(`${c.where}: pads ${JSON.stringify(pads)} remove all of axis ${i} (${x[i]})`);
    if (mode === 'reflect' && (before[i]! >= x[i]! || after[i]! >= x[i]!)) throw new FormatError(`${c.where}: reflect pads of ${before[i]}, ${after[i]} need an axis longer than them (axis ${i} has ${x[i]})`);
  }
  const all = [...before, ...after];
  return { shape, type: 'pad', spec: { mode, pads: all, value }, run: ([t]) => ops.pad(t!, all, { mode, value }) };
}
