/**
 * ONNX Pad (attributes before opset 11, inputs after; axes since 18): constant (any value), reflect
 * and edge modes, and negative pads (crops), built from differentiable slices, concatenations and
 * zero padding, so the backward pass is exact.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult } from '../../graph/executor.js';
import { using, zeroPad } from '../../graph/ops.js';
import { intValues, normalizeAxes, optionalConst, runtimeInput, type OnnxContext } from './context.js';

/** Pads (or crops) axis `a` of x by b before and e after. */
async function padAxis(x: Tensor, a: number, b: number, e: number, mode: string): Promise<Tensor> {
  const dim = x.shape[a]!;
  const part = (begin: number, n: number) => ops.slice(x, x.shape.map((_, d) => (d === a ? begin : 0)), x.shape.map((s, d) => (d === a ? n : s)));
  const temps: Tensor[] = [];
  try {
    // Crops first.
    let core = x;
    if (b < 0 || e < 0) {
      core = await part(Math.max(0, -b), dim - Math.max(0, -b) - Math.max(0, -e));
      temps.push(core);
      x = core;
      b = Math.max(0, b);
      e = Math.max(0, e);
    }
    if (b === 0 && e === 0) return core === temps[0] ? (temps.pop(), core) : core.reshape(core.shape);
    const n = core.shape[a]!;
    const from = (begin: number) => ops.slice(core, core.shape.map((_, d) => (d === a ? begin : 0)), core.shape.map((s, d) => (d === a ? 1 : s)));
    const side = async (count: number, index: (k: number) => number) => {
      const out: Tensor[] = [];
      for (let k = 0; k < count; k++) out.push(await from(index(k)));
      temps.push(...out);
      return out;
    };
    let before: Tensor[];
    let after: Tensor[];
    if (mode === 'edge') {
      before = await side(b, () => 0);
      after = await side(e, () => n - 1);
    } else {
      // reflect: x[b], …, x[1] | x | x[n−2], …, x[n−1−e]
      before = await side(b, (k) => b - k);
      after = await side(e, (k) => n - 2 - k);
    }
    return await ops.concat([...before, core, ...after], a);
  } finally {
    for (const t of temps) t.dispose();
  }
}

export function pad(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0);
  const rank = x.length;
  let mode: string;
  let pads: number[];
  let value = 0;
  let axes = x.map((_, i) => i);
  mode = c.attrs.string('mode', 'constant');
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
  if (!['constant', 'reflect', 'edge'].includes(mode)) throw new FormatError(`${c.where}: mode '${mode}' is not supported (constant, reflect, edge)`);
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
    if (mode === 'edge' && (before[i]! > 0 || after[i]! > 0) && x[i]! + Math.min(0, before[i]!) + Math.min(0, after[i]!) < 1) throw new FormatError(`${c.where}: nothing left to repeat on axis ${i}`);
  }
  return {
    shape,
    type: 'pad',
    spec: { mode, pads: [...before, ...after], value },
    run: async ([t]) => {
      if (mode !== 'constant') {
        let y = t!.reshape(t!.shape);
        for (let i = 1; i < rank; i++) if (before[i] || after[i]) y = await using(y, (v) => padAxis(v, i, before[i]!, after[i]!, mode));
        return y;
      }
      // Crops, then zeros placed around, shifted by the constant: pad(x, v) = zeroPad(x − v) + v.
      let y = t!.reshape(t!.shape);
      for (let i = 1; i < rank; i++) if (before[i]! < 0 || after[i]! < 0) y = await using(y, (v) => padAxis(v, i, Math.min(0, before[i]!), Math.min(0, after[i]!), 'edge'));
      const b = before.map((p) => Math.max(0, p));
      const e = after.map((p) => Math.max(0, p));
      if (b.every((p) => p === 0) && e.every((p) => p === 0)) return y;
      if (value !== 0) y = await using(y, (v) => ops.scale(v, 1, -value));
      y = await using(y, (v) => zeroPad(v, v.shape.map((d, i) => d + b[i]! + e[i]!), b));
      if (value !== 0) y = await using(y, (v) => ops.scale(v, 1, value));
      return y;
    },
  };
}
