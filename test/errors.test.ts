/**
 * Bad input across the library: every case must throw a SaliencyError whose message says what was
 * wrong, and leave no tensor or buffer allocated.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../src/autodiff/ops/index.js';
import { Tape, nameOutput } from '../src/autodiff/tape.js';
import { SaliencyError } from '../src/runtime/errors.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { getGpu } from './helpers.js';

type Case = [name: string, run: (t: Record<string, Tensor>) => Promise<unknown>, message: RegExp];

const cases: Case[] = [
  // mismatched shapes
  ['conv2d input channels vs filter', (t) => ops.conv2d(t.x!, t.w5!, null), /x \[2, 3, 4, 4\] has 3 channels but w \[5, 5, 3, 3\] expects/],
  ['linear in-features vs weight', (t) => ops.linear(t.flat!, t.w45!, null), /48 input features but w \[5, 45\] expects 45/],
  ['add shapes that do not broadcast', (t) => ops.add(t.x!, t.w5!), /cannot be broadcast/],
  ['concat of mismatched shapes', (t) => ops.concat([t.x!, t.w5!], 1), /concat: tensor 1 \[5, 5, 3, 3\] does not match/],
  ['max pool window larger than the input', (t) => ops.maxPool2d(t.x!, { kernel: 9 }), /kernel is larger than the padded input/],
  // configurations that would produce NaN or divide by zero
  ['conv2d stride 0', (t) => ops.conv2d(t.x!, t.w3!, null, { stride: 0 }), /stride must be positive/],
  ['avg pool kernel 0', (t) => ops.avgPool2d(t.x!, { kernel: 0 }), /kernel must be a positive integer/],
  ['scale by NaN', (t) => ops.scale(t.x!, NaN), /finite/],
  ['leaky relu slope NaN', (t) => ops.leakyRelu(t.x!, NaN), /alpha must be a finite number/],
  ['resize to zero pixels', (t) => ops.resize(t.x!, [0, 4]), /output size must be \[height, width\] of positive integers/],
  ['softmax over a missing axis', (t) => ops.softmax(t.x!, 7), /axis 7 is out of range/],
];

describe('bad input gives a clear error and leaves nothing allocated', () => {
  for (const [name, run, message] of cases) {
    it(name, async () => {
      const gpu = await getGpu();
      const inputs = {
        x: tensor(gpu, new Float32Array(2 * 3 * 4 * 4).fill(0.5), [2, 3, 4, 4]),
        w3: tensor(gpu, new Float32Array(5 * 3 * 3 * 3).fill(0.1), [5, 3, 3, 3]),
        w5: tensor(gpu, new Float32Array(5 * 5 * 3 * 3).fill(0.1), [5, 5, 3, 3]),
        flat: tensor(gpu, new Float32Array(2 * 48), [2, 48]),
        w45: tensor(gpu, new Float32Array(5 * 45), [5, 45]),
      };
      await gpu.sync();
      const before = gpu.memory();
      const tape = new Tape(gpu);
      tape.watch(inputs.x);
      const err = await tape.run(() => run(inputs)).then(
        () => null,
        (e) => e,
      );
      tape.dispose();
      expect(err, 'expected an error').toBeInstanceOf(SaliencyError);
      expect(err.message).toMatch(message);
      expect(gpu.memory().inUse).toBe(before.inUse);
      expect(gpu.memory().tensors).toBe(before.tensors);
      for (const t of Object.values(inputs)) t.dispose();
    });
  }

  it('an unknown layer name in a hook lists the layers, and frees everything', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    const x = tensor(gpu, [1, -2, 3, -4], [1, 1, 2, 2]);
    const tape = new Tape(gpu);
    tape.watch(x);
    const hook = tape.hook('conv7');
    let a: Tensor | undefined;
    const y = await tape.run(async () => {
      a = nameOutput(gpu, 'relu1', await ops.relu(x));
      return nameOutput(gpu, 'pool1', await ops.maxPool2d(a, { kernel: 2 }));
    });
    await expect(tape.backward(y)).rejects.toThrow("unknown layer 'conv7'; layers: relu1, pool1");
    expect(hook.gradient).toBeNull();
    tape.dispose();
    for (const t of [a!, y, x]) t.dispose();
    expect(gpu.memory().inUse).toBe(start.inUse);
    expect(gpu.memory().tensors).toBe(start.tensors);
  });
});
