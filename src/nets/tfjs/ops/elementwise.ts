/** TF.js elementwise ops: Add, AddV2, Sub, Mul, RealDiv, Div (broadcasting), AddN, BiasAdd. */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError, ShapeError, formatShape } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { Prepared } from '../../graph/executor.js';
import { using } from '../../graph/ops.js';
import { broadcastTf, fromTfOrder, hostInLayout } from '../layout.js';
import { checkNhwc, constInput, runtimeInput, type TfjsContext, type TfjsOpBuilder } from './context.js';

type BinaryFn = (a: Tensor, b: Tensor) => Promise<Tensor>;

export function binary(fn: BinaryFn): TfjsOpBuilder {
  return (c) => {
    if (c.inputs.length !== 2) throw new FormatError(`${c.where}: expected 2 inputs, got ${c.inputs.length}`);
    const shapes = c.inputs.map((v) => (v.kind === 'const' ? v.host.shape : v.shape));
    const shape = broadcastTf(shapes[0]!, shapes[1]!, c.where);
    const rank = shape.length;
    if (c.inputs.every((v) => v.kind === 'const')) throw new FormatError(`${c.where}: both inputs are constants (constant folding is not supported)`);
    const consts = c.inputs.map((v) => (v.kind === 'const' ? c.upload(hostInLayout(v.host, rank)) : null));
    // A lower-rank computed value against a rank-4 one is padded like TF, then moved to NCHW.
    const lifted = [0, 1].map((i) => !consts[i] && rank === 4 && shapes[i]!.length < 4);
    const lift = (t: Tensor) => using(t.reshape([...new Array<number>(4 - t.rank).fill(1), ...t.shape]), fromTfOrder);
    return {
      shape,
      run: async (args, w) => {
        const temps: Tensor[] = [];
        try {
          const operand = async (i: number) => {
            if (consts[i]) return w(consts[i]!);
            if (!lifted[i]) return args[i]!;
            const t = await lift(args[i]!);
            temps.push(t);
            return t;
          };
          return await fn(await operand(0), await operand(1));
        } finally {
          for (const t of temps) t.dispose();
        }
      },
    };
  };
}

export function addN(c: TfjsContext): Prepared {
  const shape = runtimeInput(c, 0);
  c.inputs.forEach((_, i) => {
    const s = runtimeInput(c, i);
    if (s.join() !== shape.join()) throw new ShapeError(`${c.where}: inputs ${formatShape(shape)} and ${formatShape(s)} differ; AddN needs equal shapes`);
  });
  return {
    shape,
    type: 'add',
    run: async (args) => {
      if (args.length === 1) return args[0]!.reshape(args[0]!.shape);
      let acc = await ops.add(args[0]!, args[1]!);
      for (let i = 2; i < args.length; i++) acc = await using(acc, (t) => ops.add(t, args[i]!));
      return acc;
    },
  };
}

export function biasAdd(c: TfjsContext): Prepared {
  checkNhwc(c);
  const x = runtimeInput(c, 0);
  const b = constInput(c, 1, 'bias');
  const ch = x[x.length - 1]!;
  if (b.data.length !== ch && ch !== -1) throw new ShapeError(`${c.where}: the bias has ${b.data.length} values for ${ch} channels`);
  const t = c.upload(hostInLayout(b, x.length));
  return { shape: x, type: 'add', run: ([v], w) => ops.add(v!, w(t)) };
}
