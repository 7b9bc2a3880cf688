/**
 * ONNX Gemm (transA, transB, alpha, beta) and MatMul. With a constant weight and a rank-2 input
 * they run as our `linear` (weight [out, in], alpha folded into it, beta·C into its bias when C is
 * a row), which the executor may fuse with a following activation; otherwise as matrix products
 * (a constant operand is the layer's `weight`, a constant C its `bias`).
 */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { FormatError, formatShape } from '../../../runtime/errors.js';
import type { DeviceConstant, OpResult, StepRun } from '../../graph/executor.js';
import { padRank, permuteHost, type HostTensor } from '../../graph/host.js';
import { runtimeInput, shapeOfInput, type OnnxContext } from './context.js';

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
  const cValue = c.inputs[2];
  const cHost = cValue?.kind === 'const' ? cValue.host : undefined;
  const cShapeAll = cValue ? shapeOfInput(c, 2) : [];
  const bShape = shapeOfInput(c, 1);
  if (bShape.length !== 2) throw new FormatError(`${c.where}: B must be a matrix, got ${formatShape(bShape)}`);
  const n = transB ? bShape[0]! : bShape[1]!;
  if ((transB ? bShape[1] : bShape[0]) !== k) throw new FormatError(`${c.where}: A ${formatShape(a)}${transA ? 'ᵀ' : ''} and B ${formatShape(bShape)}${transB ? 'ᵀ' : ''} do not multiply`);
  const cs = cShapeAll;
  if (cValue && (cs.length > 2 || (cs.length >= 1 && cs[cs.length - 1] !== n && cs[cs.length - 1] !== 1) || (cs.length === 2 && cs[0] !== m && cs[0] !== 1))) {
    throw new FormatError(`${c.where}: C ${formatShape(cs)} does not broadcast to [${m}, ${n}]`);
  }
  const isRow = !cValue || beta === 0 || (cValue.kind === 'const' && (cs.length < 2 || cs[0] === 1));
  if (bv?.kind === 'const' && !transA && isRow) {
    // A linear layer: weight [n, k] = α·op(B)ᵀ, bias = β·C.
    const weight = c.upload(scaled(transB ? bv.host : permuteHost(bv.host, [1, 0]), alpha));
    let bias: DeviceConstant | null = null;
    if (cHost && beta !== 0) {
      const v = scaled(cHost, beta).data;
      bias = c.upload({ dtype: 'float32', shape: [n], data: v.length === n ? Float32Array.from(v) : new Float32Array(n).fill(v[0]!) });
    }
    const params: Record<string, DeviceConstant> = { weight };
    if (bias) params.bias = bias;
    const run = (act: Activation, al: number): StepRun => (args, w) => ops.linear(args[0]!, w(weight), w(bias), { activation: act, alpha: al });
    return { shape: [m, n], type: 'linear', spec: { in: k, out: n, bias: !!bias }, params, run: run('none', 0.01), fused: run };
  }
  // B or C computed, A transposed or C a full matrix: the differentiable Gemm op.
  const cConstant = cHost && beta !== 0 ? c.upload(padRank(cHost, 2)) : null;
  const bConst = bv?.kind === 'const' ? c.upload(bv.host) : null;
  const params: Record<string, DeviceConstant> = {};
  if (bConst) params.weight = bConst;
  if (cConstant) params.bias = cConstant;
  return {
    shape: [m, n],
    type: 'matmul',
    params,
    run: async ([x, y, z], w) => {
      const cConst = w(cConstant);
      const cIn = cConst ?? (z && beta !== 0 ? (z.rank === 2 ? z : z.reshape([...new Array<number>(2 - z.rank).fill(1), ...z.shape])) : null);
      try {
        return await ops.gemm(x!, w(bConst) ?? y!, cIn, { transA, transB, alpha, beta });
      } finally {
        if (cIn && cIn !== z && cIn !== cConst) cIn.dispose();
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
    const weight = c.upload(permuteHost(bv.host, [1, 0]));
    const run = (act: Activation, al: number): StepRun => (args, w) => ops.linear(args[0]!, w(weight), null, { activation: act, alpha: al });
    return { shape: [as[0]!, bs[1]!], type: 'linear', spec: { in: bs[0], out: bs[1], bias: false }, params: { weight }, run: run('none', 0.01), fused: run };
  }
  // NumPy's matrix product with broadcast batch axes (the differentiable matmulNd).
  const lead = (q: number[]) => q.slice(0, -2);
  const [la, lb] = [lead(as), lead(bs)];
  const rank = Math.max(la.length, lb.length);
  const batch = Array.from({ length: rank }, (_, i) => {
    const p = la[la.length - rank + i] ?? 1;
    const q = lb[lb.length - rank + i] ?? 1;
    if (p !== q && p !== 1 && q !== 1) throw new FormatError(`${c.where}: the batch axes of ${formatShape(as)} and ${formatShape(bs)} do not broadcast`);
    return p === 1 ? q : p;
  });
  const out = [...batch, as[as.length - 2]!, bs[bs.length - 1]!];
  if (out[0] !== as[0]) throw new FormatError(`${c.where}: the product ${formatShape(as)} · ${formatShape(bs)} moves the batch axis`);
  const consts = [av, bv].map((v) => (v.kind === 'const' ? c.upload(v.host) : null));
  const weight = consts[0] ?? consts[1];
  return { shape: out, type: 'matmul', params: weight ? { weight } : {}, run: (args, w) => ops.matmulNd(w(consts[0] ?? null) ?? args[0]!, w(consts[1] ?? null) ?? args[1]!) };
}
