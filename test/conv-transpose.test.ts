import { describe, expect, it } from 'vitest';
import {
  convTranspose2d as convTransposeKernel,
  convTranspose2dBackwardFilter,
  convTranspose2dBackwardInput,
  convTranspose2dOutputShape,
  type ConvTranspose2dParams,
} from '../src/kernels/conv-transpose.js';
import { setConv2dStrategy, type Conv2dStrategy } from '../src/kernels/conv2d.js';
import { convTranspose2d } from '../src/autodiff/ops/conv-transpose.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { convTransposeRef, type RefConvT } from './reference/conv-transpose.js';

function toRef(p: ConvTranspose2dParams): RefConvT {
  const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);
  const pd = p.padding ?? 0;
  const pad: [number, number, number, number] = typeof pd === 'number' ? [pd, pd, pd, pd] : pd.length === 2 ? [pd[0], pd[0], pd[1], pd[1]] : pd;
  return { stride: pair(p.stride, 1), pad, outputPadding: pair(p.outputPadding, 0), dilation: pair(p.dilation, 1), groups: p.groups ?? 1 };
}

// [name, x shape, w shape, params]
const CASES: [string, number[], number[], ConvTranspose2dParams][] = [
  ['k3 s1 p1', [2, 3, 5, 4], [3, 2, 3, 3], { padding: 1 }],
  ['k4 s2 p1 (the usual 2× upsampling)', [1, 4, 4, 5], [4, 3, 4, 4], { stride: 2, padding: 1 }],
  ['k3 s2 p1 output_padding 1 (PyTorch)', [1, 2, 3, 4], [2, 3, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }],
  ['k3 s2 p0 output_padding 1: a zero row and column', [2, 2, 3, 3], [2, 2, 3, 3], { stride: 2, outputPadding: 1 }],
  ['k3 s3 output_padding [2, 1] beyond the padding', [1, 2, 2, 3], [2, 1, 3, 2], { stride: 3, padding: [0, 1, 1, 0], outputPadding: [2, 1] }],
  ['groups 2, dilation 2, asymmetric padding', [1, 4, 4, 4], [4, 3, 3, 2], { groups: 2, dilation: 2, stride: [2, 1], padding: [1, 2, 0, 1] }],
  ['depthwise (groups = C), stride 2', [2, 3, 3, 3], [3, 1, 2, 2], { groups: 3, stride: 2 }],
  ['1×1 input, k2', [1, 2, 1, 1], [2, 5, 2, 2], {}],
];

describe('transposed convolution kernels', () => {
  for (const strategy of ['direct', 'tiled'] as Conv2dStrategy[]) {
    for (const [name, xs, ws, params] of CASES) {
      it(`${strategy}: ${name}: forward, input and filter gradients against the reference`, async () => {
        const gpu = await getGpu();
        setConv2dStrategy(gpu, strategy);
        try {
          const before = gpu.memory().inUse;
          const xd = randomArray(product(xs), 1);
          const wd = randomArray(product(ws), 2);
          const m = ws[1]! * (params.groups ?? 1);
          const bd = randomArray(m, 3);
          const ref = convTransposeRef(xd, xs, wd, ws, bd, toRef(params));
          expect(convTranspose2dOutputShape(xs, ws, params)).toEqual(ref.shape);
          const x = tensor(gpu, xd, xs);
          const w = tensor(gpu, wd, ws);
          const b = tensor(gpu, bd, [m]);
          const y = await convTransposeKernel(x, w, b, params);
          expect(y.shape).toEqual(ref.shape);
          expectClose(await y.read(), ref.data, 1e-5, 1e-4);
          // The gradients of Σ g·y, element by element: y is linear in x (and in w), so ∂/∂x_k is
          // <y(unit_k), g>, with y from the reference.
          const gd = randomArray(y.size, 4);
          const g = tensor(gpu, gd, y.shape);
          const tdx = await convTranspose2dBackwardInput(g, w, xs, params);
          const tdw = await convTranspose2dBackwardFilter(x, g, ws, params);
          const unit = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => (i === k ? 1 : 0));
          const dot = (a: ArrayLike<number>, c: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * c[i]!, 0);
          const rdx = Float32Array.from({ length: xd.length }, (_, k) => dot(convTransposeRef(unit(xd.length, k), xs, wd, ws, null, toRef(params)).data, gd));
          const rdw = Float32Array.from({ length: wd.length }, (_, k) => dot(convTransposeRef(xd, xs, unit(wd.length, k), ws, null, toRef(params)).data, gd));
          expectClose(await tdx.read(), rdx, 1e-5, 1e-4);
          expectClose(await tdw.read(), rdw, 1e-5, 1e-4);
          for (const t of [x, w, b, y, g, tdx, tdw]) t.dispose();
          expect(gpu.memory().inUse).toBe(before);
        } finally {
          setConv2dStrategy(gpu, null);
        }
      });
    }
  }

  it('rejects mismatched shapes and bad parameters clearly', async () => {
    expect(() => convTranspose2dOutputShape([1, 3, 4, 4], [2, 2, 3, 3])).toThrow(ShapeError);
    expect(() => convTranspose2dOutputShape([1, 3, 4, 4], [2, 2, 3, 3])).toThrow(/x \[1, 3, 4, 4\] has 3 channels but w \[2, 2, 3, 3\] is for 2/);
    expect(() => convTranspose2dOutputShape([1, 3, 4, 4], [3, 2, 3, 3], { groups: 2 })).toThrow(/groups \(2\) must divide the input channels \(3\)/);
    expect(() => convTranspose2dOutputShape([1, 2, 4, 4], [2, 2, 3, 3], { outputPadding: -1 })).toThrow(ArgumentError);
    expect(() => convTranspose2dOutputShape([1, 2, 1, 1], [2, 2, 1, 1], { padding: 1 })).toThrow(/the output would be -1×-1/);
    const gpu = await getGpu();
    const x = tensor(gpu, randomArray(8, 1), [1, 2, 2, 2]);
    const w = tensor(gpu, randomArray(18, 2), [2, 1, 3, 3]);
    const b = tensor(gpu, [1, 2], [2]);
    await expect(convTransposeKernel(x, w, b)).rejects.toThrow(/bias must be \[M\] = \[1\], got \[2\]/);
    for (const t of [x, w, b]) t.dispose();
  });
});

describe('transposed convolution op: gradients by finite differences', () => {
  for (const [name, xs, ws, params] of CASES.filter((_, i) => [2, 4, 5].includes(i))) {
    it(name, async () => {
      const gpu = await getGpu();
      const m = ws[1]! * (params.groups ?? 1);
      await gradCheck(gpu, ([x, w, b]) => convTranspose2d(x!, w!, b!, params), [
        { data: randomArray(product(xs), 5), shape: xs },
        { data: randomArray(product(ws), 6), shape: ws },
        { data: randomArray(m, 7), shape: [m] },
      ]);
    });
  }
});
