/**
 * ONNX elementwise ops with NumPy broadcasting: Add, Sub, Mul, Div, Sum; Max and Min against a
 * constant 0 (ReLU written out, which then follows the ReLU rules); Equal, Where, Neg on constants
 * (folded shape arithmetic). Constants are uploaded with their rank padded to the output's.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult } from '../../graph/executor.js';
import { padRank, type HostTensor } from '../../graph/host.js';
import { using } from '../../graph/ops.js';
import { broadcast, hostBinary, hostMap } from '../fold.js';
import { activationStep } from './activation.js';
import { allConst, constInput, shapeOfInput, type OnnxContext, type OnnxOpBuilder } from './context.js';

type BinaryFn = (a: Tensor, b: Tensor) => Promise<Tensor>;

const HOST: ReadonlyMap<string, (x: number, y: number) => number> = new Map([
  ['Add', (x: number, y: number) => x + y],
  ['Sub', (x: number, y: number) => x - y],
  ['Mul', (x: number, y: number) => x * y],
  ['Div', (x: number, y: number) => x / y],
  ['Max', (x: number, y: number) => Math.max(x, y)],
  ['Min', (x: number, y: number) => Math.min(x, y)],
  ['Equal', (x: number, y: number) => (x === y ? 1 : 0)],
]);

/** Folds a binary op on two constants (integer division truncates, as ONNX's for ints). */
function fold(c: OnnxContext, a: HostTensor, b: HostTensor): HostTensor {
  const f = HOST.get(c.op)!;
  const out = hostBinary(a, b, f, c.where, c.op);
  if (c.op === 'Equal') return { ...out, dtype: 'bool', data: Int32Array.from(out.data) };
  return out;
}

export function binary(fn: BinaryFn, type: string): OnnxOpBuilder {
  return (c): OpResult => {
    if (c.inputs.length !== 2 || !c.inputs[0] || !c.inputs[1]) throw new FormatError(`${c.where}: expected 2 inputs, got ${c.inputs.filter((v) => v).length}`);
    if (allConst(c)) return fold(c, constInput(c, 0, 'A'), constInput(c, 1, 'B'));
    const shapes = [shapeOfInput(c, 0), shapeOfInput(c, 1)];
    const shape = broadcast(shapes[0]!, shapes[1]!, c.where);
    const rank = shape.length;
    const consts = c.inputs.map((v) => (v!.kind === 'const' ? c.upload(padRank(v!.host, rank)) : null));
    return {
      shape,
      type,
      run: (args, w) => fn(w(consts[0] ?? null) ?? args[0]!, w(consts[1] ?? null) ?? args[1]!),
    };
  };
}

/** Sum of any number of inputs. */
export function sum(c: OnnxContext): OpResult {
  const present = c.inputs.filter((v) => v);
  if (allConst(c)) return present.map((v) => (v as { host: HostTensor }).host).reduce((a, b) => hostBinary(a, b, (x, y) => x + y, c.where, 'Sum'));
  let shape = shapeOfInput(c, 0);
  for (let i = 1; i < c.inputs.length; i++) shape = broadcast(shape, shapeOfInput(c, i), c.where);
  const rank = shape.length;
  const consts = c.inputs.map((v) => (v?.kind === 'const' ? c.upload(padRank(v.host, rank)) : null));
  return {
    shape,
    type: 'add',
    run: async (args, w) => {
      const terms = c.inputs.map((_, i) => w(consts[i] ?? null) ?? args[i]!);
      if (terms.length === 1) return terms[0]!.reshape(terms[0]!.shape);
      let acc = await ops.add(terms[0]!, terms[1]!);
      for (let i = 2; i < terms.length; i++) acc = await using(acc, (t) => ops.add(t, terms[i]!));
      return acc;
    },
  };
}

/** Max(x, 0) is a ReLU; other Max/Min of computed values are not supported. On constants: folded. */
export function extremum(c: OnnxContext): OpResult {
  if (allConst(c)) return c.inputs.map((v) => (v as { host: HostTensor }).host).reduce((a, b) => fold(c, a, b));
  const runtime = c.inputs.findIndex((v) => v?.kind === 'runtime');
  const other = c.inputs.filter((_, i) => i !== runtime);
  if (c.op === 'Max' && c.inputs.length === 2 && other[0]?.kind === 'const' && other[0].host.data.length === 1 && other[0].host.data[0] === 0) {
    return activationStep(shapeOfInput(c, runtime), 'relu');
  }
  throw new FormatError(`${c.where}: ${c.op} of computed values is supported only as Max(x, 0) (a ReLU)`);
}

/** Equal: constants only (shape arithmetic). */
export function equal(c: OnnxContext): OpResult {
  if (!allConst(c)) throw new FormatError(`${c.where}: Equal is supported on constants only (folded at load time)`);
  return fold(c, constInput(c, 0, 'A'), constInput(c, 1, 'B'));
}

/** Neg: folded on a constant, our differentiable neg on a computed value. */
export function neg(c: OnnxContext): OpResult {
  const v = c.inputs[0];
  if (v?.kind === 'const') return { ...v.host, data: v.host.data instanceof Float32Array ? v.host.data.map((x) => -x) : v.host.data.map((x) => -x) };
  return { shape: shapeOfInput(c, 0), type: 'neg', run: ([t]) => ops.neg(t!) };
}

/**
 * Where(condition, X, Y): folded on constants; with a constant condition and computed X or Y,
 * X·m + Y·(1 − m) with the condition as a 0/1 mask m, differentiable in X and Y.
 */
export function where(c: OnnxContext): OpResult {
  const cond = constInput(c, 0, 'condition');
  if (allConst(c)) {
    const [x, y] = [1, 2].map((i) => constInput(c, i, i === 1 ? 'X' : 'Y'));
    return hostMap([cond, x!, y!], (k, v, w) => (k ? v : w), x!.dtype === 'float32' || y!.dtype === 'float32', c.where);
  }
  const shape = [shapeOfInput(c, 1), shapeOfInput(c, 2)].reduce((a, b) => broadcast(a, b, c.where), cond.shape);
  const rank = shape.length;
  const m = padRank({ dtype: 'float32', shape: cond.shape, data: Float32Array.from(cond.data, (k) => (k ? 1 : 0)) }, rank);
  const mask = c.upload(m);
  const inverse = c.upload({ ...m, data: Float32Array.from(m.data, (k) => 1 - k) });
  const consts = [1, 2].map((i) => (c.inputs[i]!.kind === 'const' ? c.upload(padRank((c.inputs[i] as { host: HostTensor }).host, rank)) : null));
  return {
    shape,
    type: 'where',
    run: async (args, w) => {
      const a = await ops.mul(w(consts[0] ?? null) ?? args[1]!, w(mask));
      try {
        const b = await ops.mul(w(consts[1] ?? null) ?? args[2]!, w(inverse));
        return await using(b, (bb) => ops.add(a, bb));
      } finally {
        a.dispose();
      }
    },
  };
}
