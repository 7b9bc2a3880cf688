/**
 * ONNX Gemm (transA, transB, alpha, beta) and MatMul. With a constant weight and a rank-2 input
 * they run as our `linear` (weight [out, in], alpha folded into it, beta·C into its bias when C is
 * a row), which the executor may fuse with a following activation; otherwise as matrix products.
 */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { FormatError, formatShape } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult } from '../../graph/executor.js';
import { padRank, permuteHost, type HostTensor } from '../../graph/host.js';
import { using } from '../../graph/ops.js';
import { constInput, optionalConst, runtimeInput, shapeOfInput, type OnnxContext } from './context.js';

const scaled = (h: HostTensor, k: number): HostTensor => (k === 1 ? h : { ...h, dtype: 'float32', data: Float32Array.from(h.data, (v) => v * k) });

export function gemm(c: OnnxContext): OpResult {
  const transA = c.attrs.int('transA', 0) === 1;
  const transB = c.attrs.int('transB', 0) === 1;
  const alpha = c.attrs.float('alpha', 1);
  const beta = c.attrs.float('beta', 1);
  const a = runtimeInput(c, 0, 2);
  if (transA && a[0] === -1) throw new FormatError(`${c.where}: transA on a value with a dynamic batch is not supported`);
  const [m, k] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const bv = c.inputs[1];
  const cHost = optionalConst(c, 2, 'C');
  const bShape = shapeOfInput(c, 1);
  if (bShape.length !== 2) throw new FormatError(`${c.where}: B must be a matrix, got ${formatShape(bShape)}`);
  const n = transB ? bShape[0]! : bShape[1]!;
  if ((transB ? bShape[1] : bShape[0]) !== k) throw new FormatError(`${c.where}: A ${formatShape(a)}${transA ? 'ᵀ' : ''} and B ${formatShape(bShape)}${transB ? 'ᵀ' : ''} do not multiply`);
  // C: a bias row ([n] or [1, n]) goes into linear's bias; anything else is added after.
  let biasRow: HostTensor | null = null;
  let addAfter: Tensor | null = null;
  if (cHost && beta !== 0) {
    const cs = cHost.shape;
    const isRow = cs.length === 0 || (cs.length === 1 && (cs[0] === n || cs[0] === 1)) || (cs.length === 2 && cs[0] === 1 && (cs[1] === n || cs[1] === 1));
    if (isRow) {
      const v = scaled(cHost, beta).data;
      biasRow = { dtype: 'float32', shape: [n], data: v.length === n ? Float32Array.from(v) : new Float32Array(n).fill(v[0]!) };
    } else {
      if (cs.length > 2 || (cs.length === 2 && ((cs[0] !== m && cs[0] !== 1) || (cs[1] !== n && cs[1] !== 1)))) {
        throw new FormatError(`${c.where}: C ${formatShape(cs)} does not broadcast to [${m}, ${n}]`);
      }
      addAfter = c.upload(padRank(scaled(cHost, beta), 2));
    }
  }
  const transposeA = (x: Tensor) => (transA ? ops.transpose(x, [1, 0]) : Promise.resolve(x));
  if (bv?.kind === 'const') {
    const w = c.upload(scaled(transB ? bv.host : permuteHost(bv.host, [1, 0]), alpha)); // [n, k]
    const bias = biasRow ? c.upload(biasRow) : null;
    const params: Record<string, Tensor> = { weight: w };
    if (bias) params.bias = bias;
    const run = (act: Activation, al: number) => async (args: (Tensor | undefined)[]) => {
      const x = await transposeA(args[0]!);
      let y = x === args[0] ? await ops.linear(x, w, bias, { activation: addAfter ? 'none' : act, alpha: al }) : await using(x, (t) => ops.linear(t, w, bias, { activation: addAfter ? 'none' : act, alpha: al }));
      if (addAfter) {
        y = await using(y, (t) => ops.add(t, addAfter!));
        if (act !== 'none') y = await using(y, (t) => ops.activation(t, act, al));
      }
      return y;
    };
    return { shape: [m, n], type: 'linear', spec: { in: k, out: n, bias: !!bias }, params, run: run('none', 0.01), fused: run };
  }
  // B computed: a plain product.
  const rowBias = biasRow ? c.upload(biasRow) : null;
  return {
    shape: [m, n],
    type: 'matmul',
    run: async ([x, y]) => {
      const temps: Tensor[] = [];
      try {
        const xa = await transposeA(x!);
        if (xa !== x) temps.push(xa);
        const yb = transB ? await ops.transpose(y!, [1, 0]) : y!;
        if (yb !== y) temps.push(yb);
        let r = await ops.matmul(xa, yb);
        if (alpha !== 1) r = await using(r, (t) => ops.scale(t, alpha));
        if (rowBias) r = await using(r, (t) => ops.add(t, rowBias));
        if (addAfter) r = await using(r, (t) => ops.add(t, addAfter!));
        return r;
      } finally {
        for (const t of temps) t.dispose();
      }
    },
  };
}

/** MatMul: NumPy matrix product; a constant [K, N] weight after a rank-2 input is a linear layer. */
export function matmul(c: OnnxContext): OpResult {
  const as = shapeOfInput(c, 0);
  const bs = shapeOfInput(c, 1);
  const av = c.inputs[0]!;
  const bv = c.inputs[1]!;
  if (as.length < 2 || bs.length < 2) throw new FormatError(`${c.where}: matrix products of vectors (${formatShape(as)} · ${formatShape(bs)}) are not supported`);
  if (as[as.length - 1] !== bs[bs.length - 2]) throw new FormatError(`${c.where}: ${formatShape(as)} and ${formatShape(bs)} do not multiply`);
  if (av.kind === 'const' && bv.kind === 'const') throw new FormatError(`${c.where}: a product of two constants is not supported`);
  if (av.kind === 'runtime' && bv.kind === 'const' && as.length === 2 && bs.length === 2) {
    const w = c.upload(permuteHost(bv.host, [1, 0]));
    const run = (act: Activation, al: number) => (args: (Tensor | undefined)[]) => ops.linear(args[0]!, w, null, { activation: act, alpha: al });
    return { shape: [as[0]!, bs[1]!], type: 'linear', spec: { in: bs[0], out: bs[1], bias: false }, params: { weight: w }, run: run('none', 0.01), fused: run };
  }
  // Batched: the leading axes of both sides must agree, or one side is a plain matrix.
  const lead = (s: number[]) => s.slice(0, -2);
  if (as.length > 2 && bs.length > 2 && (as.length !== bs.length || lead(as).some((d, i) => d !== lead(bs)[i] && d !== -1 && lead(bs)[i] !== -1))) {
    throw new FormatError(`${c.where}: broadcasting the batch axes of ${formatShape(as)} and ${formatShape(bs)} is not supported`);
  }
  const out = [...(as.length >= bs.length ? lead(as) : lead(bs)), as[as.length - 2]!, bs[bs.length - 1]!];
  const consts = [av, bv].map((v) => (v.kind === 'const' ? c.upload(v.host) : null));
  return {
    shape: out,
    type: 'matmul',
    run: async (args) => {
      const [x, y] = [consts[0] ?? args[0]!, consts[1] ?? args[1]!];
      // Our product takes [M, K] or [B, M, K]: fold the leading axes into one.
      const flat = (t: Tensor) => (t.rank <= 3 ? t.reshape(t.shape) : t.reshape([t.size / (t.shape[t.rank - 2]! * t.shape[t.rank - 1]!), t.shape[t.rank - 2]!, t.shape[t.rank - 1]!]));
      const [fx, fy] = [flat(x), flat(y)];
      try {
        const r = await ops.matmul(fx, fy);
        const lead2 = (x.rank >= y.rank ? x : y).shape.slice(0, -2);
        return await using(r, async (t) => t.reshape([...lead2, t.shape[t.rank - 2]!, t.shape[t.rank - 1]!]));
      } finally {
        fx.dispose();
        fy.dispose();
      }
    },
  };
}
