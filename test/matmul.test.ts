import { describe, expect, it } from 'vitest';
import { columnSums, linearForward, matmul } from '../src/kernels/matmul.js';
import { linear, matmulOp } from '../src/autodiff/ops/linear.js';
import { relu } from '../src/autodiff/ops/activation.js';
import { Tape } from '../src/autodiff/tape.js';
import { ACTIVATION_WGSL, linearWorkgroups, type Activation } from '../src/kernels/common.js';
import { ShapeError } from '../src/runtime/errors.js';
import { Uniforms, type Gpu } from '../src/runtime/gpu.js';
import { empty, tensor, type Tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { columnSumsReference, matmulReference, type MatmulReferenceOptions } from './reference/matmul.js';

/** Runs matmul on random operands and compares with the reference; frees everything. */
async function checkMatmul(gpu: Gpu, sa: number[], sb: number[], options: MatmulReferenceOptions = {}, seed = 1) {
  const a = randomArray(product(sa), seed);
  const b = randomArray(product(sb), seed + 1);
  const biasData = options.bias ? randomArray(options.bias.length, seed + 2) : null;
  const ta = tensor(gpu, a, sa);
  const tb = tensor(gpu, b, sb);
  const tbias = biasData ? tensor(gpu, biasData, [biasData.length]) : null;
  const out = await matmul(ta, tb, { ...options, bias: tbias });
  const ref = matmulReference(a, sa, b, sb, { ...options, bias: biasData });
  expect(out.shape).toEqual(ref.shape);
  const K = options.transA ? sa[sa.length - 2]! : sa[sa.length - 1]!;
  expectClose(await out.read(), ref.data, 1e-5 * Math.sqrt(K) + 1e-6, 1e-4);
  for (const t of [ta, tb, tbias, out]) t?.dispose();
}

const shapeOf = (M: number, K: number, N: number, transA: boolean, transB: boolean): [number[], number[]] => [
  transA ? [K, M] : [M, K],
  transB ? [N, K] : [K, N],
];

describe('matmul kernel', () => {
  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [65, 129, 33],
    [1, 1000, 10],
    [64, 64, 64],
    [17, 16, 1],
    [130, 3, 67],
    // few rows: the matvec kernels (M ≤ 8; on CPU adapters up to 64 rows in blocks of 8, with b
    // transposed and K % 4 = 0 (matvec_rows) or not transposed and N % 4 = 0 (matvec_cols4_direct))
    [8, 300, 513],
    [50, 36, 132], // CPU adapters: 7 blocks of 8 rows, the last one partial
    [64, 20, 8],
    [65, 20, 8], // CPU adapters: beyond 64 rows, back to the GEMM
    [1, 2049, 300],
    [2, 7, 1],
    [2, 37, 68], // M ≤ 2, N % 4 = 0, B not transposed: vec4 columns (matvec_cols4), a partial workgroup
    [1, 70, 4100],
    [9, 40, 70], // just above: back to the GEMM
  ];
  for (const [M, K, N] of sizes) {
    it(`M×K×N = ${M}×${K}×${N}, every transpose combination`, async () => {
      const gpu = await getGpu();
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const [sa, sb] = shapeOf(M, K, N, transA, transB);
          await checkMatmul(gpu, sa, sb, { transA, transB }, M + K + N);
        }
      }
    });
  }

  it('few rows (matvec path): bias and every activation fused', async () => {
    const gpu = await getGpu();
    for (const activation of ['none', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'tanh'] as Activation[]) {
      await checkMatmul(gpu, [3, 52], [130, 52], { transB: true, bias: new Float32Array(130), activation, alpha: 0.2 }); // vec4 loads
      await checkMatmul(gpu, [3, 50], [130, 50], { transB: true, bias: new Float32Array(130), activation, alpha: 0.2 });
      await checkMatmul(gpu, [1, 50], [50, 130], { bias: new Float32Array(130), activation });
      const bias = Float32Array.from({ length: 132 }, (_, i) => Math.sin(i)); // each column its own bias
      await checkMatmul(gpu, [2, 50], [50, 132], { bias, activation, alpha: 0.2 }); // vec4 columns
      await checkMatmul(gpu, [2, 52], [132, 52], { transB: true, bias, activation, alpha: 0.2 }); // CPU adapters: one column per invocation
      await checkMatmul(gpu, [20, 52], [132, 52], { transB: true, bias, activation, alpha: 0.2 }); // CPU adapters: three blocks of rows
      await checkMatmul(gpu, [20, 50], [50, 132], { bias, activation, alpha: 0.2 });
    }
  });

  it('few rows, B not transposed, N % 4 = 0: four columns per invocation for up to 8 rows (CPU adapters)', async () => {
    const gpu = await getGpu();
    for (const [M, K, N] of [[3, 40, 68], [8, 33, 132], [5, 1, 4]] as const) {
      for (const transA of [false, true]) {
        const [sa, sb] = shapeOf(M, K, N, transA, false);
        await checkMatmul(gpu, sa, sb, { transA, bias: Float32Array.from({ length: N }, (_, i) => Math.cos(i)), activation: 'leakyrelu', alpha: 0.2 }, M + K);
      }
    }
  });

  // On a CPU adapter matmul picks matvec_cols4_direct for these shapes, so the lane-reducing kernel
  // GPUs use is dispatched here by name.
  it('matvec_cols4 (the GPU kernel for one or two rows): run directly against the reference', async () => {
    const gpu = await getGpu();
    for (const [M, K, N, transA, bias] of [[1, 50, 132, false, true], [2, 37, 68, true, false], [2, 300, 4, false, true]] as const) {
      const [sa, sb] = shapeOf(M, K, N, transA, false);
      const a = randomArray(product(sa), K);
      const b = randomArray(product(sb), K + 1);
      const biasData = bias ? randomArray(N, K + 2) : null;
      await gpu.scope(async () => {
        const kernel = await gpu.kernel('matvec_cols4', { BIAS: bias, ROWS: M, TRANS_A: transA, ACTIVATION: ACTIVATION_WGSL.relu });
        const out = empty(gpu, [M, N]);
        const buffers = [tensor(gpu, a, sa), tensor(gpu, b, sb), ...(biasData ? [tensor(gpu, biasData, [N])] : []), out];
        gpu.dispatch(kernel, { uniforms: new Uniforms().u32(M, N, K).f32(0), buffers, workgroups: linearWorkgroups(gpu, N / 4, 16) });
        const ref = matmulReference(a, sa, b, sb, { transA, bias: biasData, activation: 'relu' });
        expectClose(await out.read(), ref.data, 1e-5 * Math.sqrt(K) + 1e-6, 1e-4);
      });
    }
  });

  it('batches: [B,M,K]×[B,K,N], and a 2-D operand shared by the batch, with transposes', async () => {
    const gpu = await getGpu();
    await checkMatmul(gpu, [3, 17, 9], [3, 9, 70]);
    await checkMatmul(gpu, [3, 9, 17], [3, 70, 9], { transA: true, transB: true });
    await checkMatmul(gpu, [2, 66, 5], [5, 3]);
    await checkMatmul(gpu, [5, 66], [2, 3, 5], { transA: true, transB: true });
    await checkMatmul(gpu, [4, 2], [3, 2, 7]);
  });

  const acts: Activation[] = ['none', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'tanh'];
  for (const activation of acts) {
    it(`bias and fused ${activation}`, async () => {
      const gpu = await getGpu();
      const bias = new Float32Array(45);
      await checkMatmul(gpu, [33, 70], [70, 45], { bias, activation, alpha: 0.2 }, 5);
      await checkMatmul(gpu, [2, 70, 33], [45, 70], { bias, activation, alpha: 0.2, transA: true, transB: true }, 6);
    });
  }

  it('linearForward is x · wᵀ + b with PyTorch-layout weights', async () => {
    const gpu = await getGpu();
    const x = randomArray(5 * 7, 1);
    const w = randomArray(3 * 7, 2);
    const b = randomArray(3, 3);
    const [tx, tw, tb] = [tensor(gpu, x, [5, 7]), tensor(gpu, w, [3, 7]), tensor(gpu, b, [3])];
    const out = await linearForward(tx, tw, tb, 'relu');
    expect(out.shape).toEqual([5, 3]);
    const expected = new Float32Array(15);
    for (let n = 0; n < 5; n++) {
      for (let o = 0; o < 3; o++) {
        let s = b[o]!;
        for (let i = 0; i < 7; i++) s += x[n * 7 + i]! * w[o * 7 + i]!;
        expected[n * 3 + o] = Math.max(s, 0);
      }
    }
    expectClose(await out.read(), expected);
    const noBias = await linearForward(tx, tw, null);
    expectClose(await noBias.read(), matmulReference(x, [5, 7], w, [3, 7], { transB: true }).data);
    for (const t of [tx, tw, tb, out, noBias]) t.dispose();
  });

  for (const shape of [[1, 1], [1000, 3], [37, 70], [3, 2, 5], [4]]) {
    it(`columnSums ${JSON.stringify(shape)}`, async () => {
      const gpu = await getGpu();
      const x = randomArray(product(shape), 9);
      const t = tensor(gpu, x, shape);
      const out = await columnSums(t);
      const C = shape[shape.length - 1]!;
      expect(out.shape).toEqual([C]);
      expectClose(await out.read(), columnSumsReference(x, C), 1e-4, 1e-4);
      t.dispose();
      out.dispose();
    });
  }

  it('rejects bad shapes with clear messages, allocating nothing', async () => {
    const gpu = await getGpu();
    const a = tensor(gpu, new Float32Array(6), [2, 3]);
    const b = tensor(gpu, new Float32Array(20), [4, 5]);
    const bT = tensor(gpu, new Float32Array(20), [5, 4]);
    const w = tensor(gpu, new Float32Array(8), [2, 4]);
    const bias4 = tensor(gpu, new Float32Array(4), [4]);
    const a3 = tensor(gpu, new Float32Array(12), [2, 2, 3]);
    const b3 = tensor(gpu, new Float32Array(27), [3, 3, 3]);
    const x = tensor(gpu, new Float32Array(12), [4, 3]);
    const w9 = tensor(gpu, new Float32Array(27), [9, 3]);
    const before = { ...gpu.memory() };
    await expect(matmul(a, b)).rejects.toThrow(/inner dimensions differ: a \[2, 3\] gives K = 3 .*b \[4, 5\] gives K = 4/);
    await expect(matmul(a, b, { transA: true })).rejects.toThrow(/a is read transposed/);
    await expect(matmul(a, w, { transB: true })).rejects.toThrow(ShapeError);
    // b · bTᵀ is [4, 5]·[5, 4]ᵀ: K = 5 ≠ 4
    await expect(matmul(b, bT, { transB: true })).rejects.toThrow(/gives K = 5 .*gives K = 4/);
    // b · bT is [4, 4]: a bias of 4 is right, a bias of 5 is not
    await expect(matmul(bT, b, { bias: bias4 })).rejects.toThrow(/bias must have shape \[5\] \(one value per output column\), got \[4\]/);
    await expect(matmul(a3, b3)).rejects.toThrow(/batch sizes differ: a \[2, 2, 3\] has 2, b \[3, 3, 3\] has 3/);
    await expect(matmul(bias4, b)).rejects.toThrow(/a must be a matrix/);
    await expect(matmul(b, bT, { activation: 'gelu' as Activation })).rejects.toThrow(/unknown activation 'gelu'/);
    await expect(matmul(b, bT, { activation: 'leakyrelu', alpha: -1 })).rejects.toThrow(/alpha must be ≥ 0/);
    await expect(linearForward(a, w)).rejects.toThrow(/x \[2, 3\] has 3 input features but w \[2, 4\] expects 4/);
    await expect(linearForward(x, w9, bias4)).rejects.toThrow(/bias must have shape \[9\]/);
    await expect(linear(x, w9, bias4)).rejects.toThrow(/bias must have shape \[9\]/);
    expect(gpu.memory()).toEqual(before);
    for (const t of [a, b, bT, w, bias4, a3, b3, x, w9]) t.dispose();
  });
});

describe('linear and matmul backward', () => {
  /** Random data for linear(x [n, in], w [out, in], b [out]) whose pre-activations stay ≥ 0.15 from 0. */
  function linearData(n: number, inF: number, out: number) {
    for (let seed = 1; ; seed++) {
      const x = randomArray(n * inF, seed);
      const w = randomArray(out * inF, seed + 100);
      const b = randomArray(out, seed + 200);
      const z = matmulReference(x, [n, inF], w, [out, inF], { transB: true, bias: b }).data;
      if (z.every((v) => Math.abs(v) > 0.15)) return { x, w, b };
    }
  }

  for (const activation of ['none', 'relu', 'leakyrelu', 'sigmoid', 'tanh'] as Activation[]) {
    it(`linear (${activation}): gradients of x, w and b match finite differences`, async () => {
      const gpu = await getGpu();
      const { x, w, b } = linearData(3, 4, 2);
      await gradCheck(gpu, ([tx, tw, tb]) => linear(tx!, tw!, tb!, { activation, alpha: 0.2 }), [
        { data: x, shape: [3, 4] },
        { data: w, shape: [2, 4] },
        { data: b, shape: [2] },
      ]);
    });
  }

  it('linear without bias, and a constant w (needsGrad respected)', async () => {
    const gpu = await getGpu();
    const { x, w } = linearData(2, 5, 3);
    await gradCheck(gpu, ([tx, tw]) => linear(tx!, tw!, null), [
      { data: x, shape: [2, 5] },
      { data: w, shape: [3, 5], check: false },
    ]);
    const before = gpu.memory().inUse;
    await gpu.scope(async () => {
      const [tx, tw, tb] = [tensor(gpu, x, [2, 5]), tensor(gpu, w, [3, 5]), tensor(gpu, [1, 2, 3], [3])];
      const tape = new Tape(gpu);
      tape.watch(tx);
      const y = await tape.run(() => linear(tx, tw, tb, { activation: 'relu' }));
      const grads = await tape.backward(y);
      expect(grads.get(tw)).toBeUndefined();
      expect(grads.get(tb)).toBeUndefined();
      expect(grads.of(tx).shape).toEqual([2, 5]);
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(before);
  });

  const matmulCases: [number[], number[]][] = [
    [[2, 3], [3, 4]],
    [[2, 2, 3], [2, 3, 2]],
    [[2, 2, 3], [3, 2]], // b shared by the batch
    [[2, 3], [3, 3, 2]], // a shared by the batch
  ];
  for (const [sa, sb] of matmulCases) {
    it(`matmulOp ${JSON.stringify(sa)}·${JSON.stringify(sb)}: gradients match finite differences`, async () => {
      const gpu = await getGpu();
      await gradCheck(gpu, ([ta, tb]) => matmulOp(ta!, tb!), [
        { data: randomArray(product(sa), 3), shape: sa },
        { data: randomArray(product(sb), 4), shape: sb },
      ]);
    });
  }

  it('a fused ReLU follows the per-call rule exactly like a separate ReLU', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const { x, w, b } = linearData(4, 3, 5);
    const dyData = randomArray(20, 42);
    await gpu.scope(async () => {
      const [tx, tw, tb] = [tensor(gpu, x, [4, 3]), tensor(gpu, w, [5, 3]), tensor(gpu, b, [5])];
      const seed = tensor(gpu, dyData, [4, 5]);
      const gradX = async (fused: boolean, rule?: 'guided' | 'deconv') => {
        const tape = new Tape(gpu);
        tape.watch(tx);
        const y = await tape.run(async () =>
          fused ? linear(tx, tw, tb, { activation: 'relu' }) : relu(await linear(tx, tw, tb)),
        );
        const grads = await tape.backward(y, { seed, rules: rule ? { activations: { relu: rule } } : undefined });
        const g = await grads.of(tx).read();
        const yv = await y.read();
        grads.dispose();
        tape.dispose();
        return { g, yv };
      };
      for (const rule of [undefined, 'guided', 'deconv'] as const) {
        const fused = await gradX(true, rule);
        const separate = await gradX(false, rule);
        expectClose(fused.g, separate.g);
        // By hand: dz = rule(dy, y), dx = dz · w.
        const dz = dyData.map((g, i) => {
          const y = fused.yv[i]!;
          if (rule === 'guided') return y > 0 && g > 0 ? g : 0;
          if (rule === 'deconv') return Math.max(g, 0);
          return y > 0 ? g : 0;
        });
        expectClose(fused.g, matmulReference(dz, [4, 5], w, [5, 3]).data);
      }
      const ordinary = await gradX(true);
      const guided = await gradX(true, 'guided');
      expect(Array.from(ordinary.g)).not.toEqual(Array.from(guided.g));
      expect(Array.from((await gradX(true)).g)).toEqual(Array.from(ordinary.g));
    });
    expect(gpu.memory().inUse).toBe(before);
  });
});
