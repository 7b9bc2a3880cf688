import { describe, expect, it } from 'vitest';
import { gemm as gemmKernel, matmulNd as matmulNdKernel, matmulNdPlan } from '../src/kernels/gemm.js';
import { gemm, matmulNd } from '../src/autodiff/ops/gemm.js';
import { Tape } from '../src/autodiff/tape.js';
import { ShapeError } from '../src/runtime/errors.js';
import { tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { gemmReference, matmulNdReference } from './reference/gemm.js';

const input = (shape: number[], seed: number) => ({ data: randomArray(product(shape), seed), shape });

describe('gemm (ONNX Gemm)', () => {
  // [M, K, N, C shape or null, options]
  const cases: [number, number, number, number[] | null, { transA?: boolean; transB?: boolean; alpha?: number; beta?: number }][] = [
    [3, 5, 4, [4], { transB: true }], // nn.Linear: the fused-bias path
    [3, 5, 4, [1, 4], {}],
    [3, 5, 4, null, { transA: true }],
    [3, 5, 4, [3, 1], { transA: true, transB: true, beta: 0.5 }], // column bias
    [3, 5, 4, [3, 4], { alpha: -1.5, beta: 2 }],
    [3, 5, 4, [1], { alpha: 0.25 }], // scalar C
    [2, 3, 70, [70], { transB: true, alpha: 2, beta: -1 }],
    [70, 9, 65, [65], { transA: true }], // tiled GEMM (M > 8)
  ];
  for (const [M, K, N, cShape, o] of cases) {
    it(`M×K×N ${M}×${K}×${N}, C ${JSON.stringify(cShape)}, ${JSON.stringify(o)}: forward against the reference`, async () => {
      const gpu = await getGpu();
      const sa = o.transA ? [K, M] : [M, K];
      const sb = o.transB ? [N, K] : [K, N];
      const a = randomArray(product(sa), 1);
      const b = randomArray(product(sb), 2);
      const c = cShape ? { data: randomArray(product(cShape), 3), shape: cShape } : null;
      const before = gpu.memory().inUse;
      const ta = tensor(gpu, a, sa);
      const tb = tensor(gpu, b, sb);
      const tc = c ? tensor(gpu, c.data, c.shape) : null;
      const y = await gemmKernel(ta, tb, tc, o);
      const ref = gemmReference(a, sa, b, sb, c, o);
      expect(y.shape).toEqual(ref.shape);
      expectClose(await y.read(), ref.data, 1e-5, 1e-4);
      for (const t of [ta, tb, tc, y]) t?.dispose();
      expect(gpu.memory().inUse).toBe(before);
    });
  }

  for (const [M, K, N, cShape, o] of cases.slice(0, 6)) {
    it(`gradients of A, B and C by finite differences: C ${JSON.stringify(cShape)}, ${JSON.stringify(o)}`, async () => {
      const gpu = await getGpu();
      const sa = o.transA ? [K, M] : [M, K];
      const sb = o.transB ? [N, K] : [K, N];
      const inputs = [input(sa, 4), input(sb, 5), ...(cShape ? [input(cShape, 6)] : [])];
      await gradCheck(gpu, ([a, b, c]) => gemm(a!, b!, c ?? null, o), inputs);
    });
  }

  it('rejects mismatched shapes with clear errors', async () => {
    const gpu = await getGpu();
    const a = tensor(gpu, randomArray(6, 1), [2, 3]);
    const b = tensor(gpu, randomArray(8, 2), [4, 2]);
    await expect(gemmKernel(a, b, null)).rejects.toThrow(/inner dimensions differ: A \[2, 3\] gives K = 3, B \[4, 2\] gives K = 4/);
    const b2 = tensor(gpu, randomArray(12, 2), [4, 3]);
    const c = tensor(gpu, randomArray(3, 2), [3]);
    await expect(gemmKernel(a, b2, c, { transB: true })).rejects.toThrow(ShapeError);
    await expect(gemmKernel(a, b2, c, { transB: true })).rejects.toThrow(/C \[3\] does not broadcast to the result \[2, 4\]/);
    for (const t of [a, b, b2, c]) t.dispose();
  });
});

describe('matmulNd (NumPy/ONNX MatMul)', () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[4], [4, 5]], // 1-D a: a row, removed from the result
    [[3, 4], [4]], // 1-D b: a column
    [[4], [4]], // dot product: a scalar
    [[2, 3, 4], [4, 5]], // b shared: rows folded
    [[3, 4], [2, 4, 5]], // a shared by the batch
    [[2, 3, 3, 4], [2, 3, 4, 5]], // equal batches
    [[2, 1, 3, 4], [1, 3, 4, 2]], // both broadcast
    [[1, 1, 3, 4], [2, 4, 5]], // a's batch all ones
    [[2, 3, 4], [1, 4, 5]], // b's batch all ones
  ];
  for (const [sa, sb] of cases) {
    it(`${JSON.stringify(sa)} · ${JSON.stringify(sb)}: forward against numpy.matmul's rule, gradients by finite differences`, async () => {
      const gpu = await getGpu();
      const a = randomArray(product(sa), 7);
      const b = randomArray(product(sb), 8);
      const ref = matmulNdReference(a, sa, b, sb);
      expect(matmulNdPlan(sa, sb).outShape).toEqual(ref.shape);
      const before = gpu.memory().inUse;
      const ta = tensor(gpu, a, sa);
      const tb = tensor(gpu, b, sb);
      for (const f of [matmulNdKernel, matmulNd]) {
        const y = await f(ta, tb);
        expect(y.shape).toEqual(ref.shape);
        expectClose(await y.read(), ref.data, 1e-5, 1e-4);
        y.dispose();
      }
      ta.dispose();
      tb.dispose();
      expect(gpu.memory().inUse).toBe(before);
      await gradCheck(gpu, ([x, y]) => matmulNd(x!, y!), [{ data: a, shape: sa }, { data: b, shape: sb }]);
    });
  }

  it('records nothing when no input is tracked, and leaves no tensors on the tape after dispose', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const tape = new Tape(gpu);
    const a = tensor(gpu, randomArray(24, 1), [2, 3, 4]);
    const b = tape.watch(tensor(gpu, randomArray(40, 2), [2, 4, 5]));
    const y = await tape.run(() => matmulNd(a, b));
    const grads = await tape.backward(y);
    expect(grads.get(a)).toBeUndefined();
    expect(grads.of(b).shape).toEqual([2, 4, 5]);
    grads.dispose();
    tape.dispose();
    for (const t of [a, b, y]) t.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('rejects batches that do not broadcast and inner dimensions that differ', async () => {
    expect(() => matmulNdPlan([2, 3, 4], [3, 4, 5])).toThrow(/cannot be broadcast/);
    expect(() => matmulNdPlan([3, 4], [5, 6])).toThrow(/inner dimensions differ: a \[3, 4\] has K = 4, b \[5, 6\] has K = 5/);
  });
});
