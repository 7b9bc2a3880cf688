import { describe, expect, it } from 'vitest';
import { Tape, defineOp, makeGrads, nameOutput, noGrad, recordOp, registerBackward } from '../src/autodiff/tape.js';
import { add, mul, scale, unary } from '../src/kernels/elementwise.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { expectClose, getGpu } from './helpers.js';

// Minimal ops defined here, so that the tape is tested on its own.
async function tScale(x: Tensor, k: number): Promise<Tensor> {
  const y = await scale(x, k);
  recordOp(x.gpu, 't_scale', [x], y, { k });
  return y;
}
registerBackward('t_scale', async (dy, ctx) => [await scale(dy, ctx.saved.k as number)]);

async function tMul(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await mul(a, b);
  recordOp(a.gpu, 't_mul', [a, b], y, { a, b });
  return y;
}
let mulBackwardCalls: boolean[][] = [];
registerBackward('t_mul', async (dy, ctx) => {
  mulBackwardCalls.push([...ctx.needsGrad]);
  const { a, b } = ctx.saved as { a: Tensor; b: Tensor };
  return [ctx.needsGrad[0] ? await mul(dy, b) : null, ctx.needsGrad[1] ? await mul(dy, a) : null];
});

async function tAdd(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await add(a, b);
  recordOp(a.gpu, 't_add', [a, b], y);
  return y;
}
registerBackward('t_add', async (dy) => [await scale(dy, 1), await scale(dy, 1)]);

/** A ReLU whose backward goes through the overridable activation table. */
async function tRelu(x: Tensor): Promise<Tensor> {
  const y = await unary('max(x, 0.0)', x);
  recordOp(x.gpu, 't_relu', [x], y, { y });
  return y;
}
registerBackward('t_relu', async (dy, ctx) => [await ctx.activation('relu', dy, { y: ctx.saved.y as Tensor })]);

/** y = x · k + shift, its saved values typed: no casts in the backward rule. */
const affineDef = defineOp<{ k: number; x: Tensor }>('t_affine', async (dy, ctx) => {
  const { k, x } = ctx.saved; // k: number, x: Tensor
  expect(x.isDisposed).toBe(false); // retained by the tape although the caller disposed it
  return [ctx.needsGrad[0] ? await scale(dy, k) : null];
});
async function tAffine(x: Tensor, k: number, shift: number): Promise<Tensor> {
  const y = await scale(x, k, shift);
  const copy = await scale(x, 1);
  affineDef.record([x], y, { k, x: copy });
  copy.dispose(); // the tape retains what it saved
  return y;
}

/** Never called: compile-time checks of defineOp's types (tsc fails if an expected error is missing). */
export function defineOpTypeChecks(x: Tensor, y: Tensor): void {
  // @ts-expect-error: k must be a number
  affineDef.record([x], y, { k: '2', x });
  // @ts-expect-error: x is missing
  affineDef.record([x], y, { k: 2 });
  defineOp<{ k: number }>('t_typed', async (_dy, ctx) => {
    // @ts-expect-error: the saved values have no member 'q'
    void ctx.saved.q;
    return [];
  });
  const noSaved = defineOp('t_nothing_saved', async () => []);
  noSaved.record([x], y); // an op that saves nothing passes nothing
}

describe('tape autodiff', () => {
  it('defineOp: the backward rule gets the saved values with their declared types, tensors retained', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, -2, 3], [3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(() => tAffine(x, 3, 1));
      const grads = await tape.backward(y);
      expect([...(await grads.of(x).read())]).toEqual([3, 3, 3]);
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().tensors).toBe(start.tensors);
  });

  it('accumulates gradients through a diamond and through a tensor used twice', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    const xs = [-2, -0.5, 0, 1, 3];
    await gpu.scope(async () => {
      const x = tensor(gpu, xs, [5]);
      const tape = new Tape(gpu);
      tape.watch(x);
      // y = 3x;  z = y·y + 2y + x·x  →  dz/dx = 18x + 6 + 2x = 20x + 6
      const z = await tape.run(async () => {
        const y = await tScale(x, 3);
        return tAdd(await tAdd(await tMul(y, y), await tScale(y, 2)), await tMul(x, x));
      });
      const grads = await tape.backward(z);
      expectClose(await grads.of(x).read(), xs.map((v) => 20 * v + 6));
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(start.inUse);
    expect(gpu.memory().tensors).toBe(start.tensors);
  });

  it('computes gradients for parameters and skips inputs that need none', async () => {
    const gpu = await getGpu();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2, 3], [3]);
      const w = tensor(gpu, [4, 5, 6], [3]);
      w.requiresGrad = true;
      const tape = new Tape(gpu);
      const y = await tape.run(() => tMul(x, w));
      mulBackwardCalls = [];
      const grads = await tape.backward(y);
      expect(mulBackwardCalls).toEqual([[false, true]]);
      expect([...(await grads.of(w).read())]).toEqual([1, 2, 3]);
      expect(grads.get(x)).toBeUndefined();
      grads.dispose();
      tape.dispose();
    });
  });

  it('records nothing in no-grad mode', async () => {
    const gpu = await getGpu();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2], [2]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(() => noGrad(gpu, () => tScale(x, 2)));
      await expect(tape.backward(y)).rejects.toThrow(/not computed on this tape/);
      tape.dispose();
    });
  });

  it('overrides a rule for one call only, and only that rule', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    await gpu.scope(async () => {
      const x = tensor(gpu, [-1, 2, 3], [3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      // y = relu(x) · 2 ; a custom relu rule passes the gradient through unchanged
      const y = await tape.run(async () => tScale(await tRelu(x), 2));
      const seed = tensor(gpu, [1, -1, 1], [3]);
      const identity = async (g: Tensor) => scale(g, 1);
      const custom = await tape.backward(y, { seed, rules: { activations: { relu: identity } } });
      expect([...(await custom.of(x).read())]).toEqual([2, -2, 2]);
      custom.dispose();
      // Replacing an op's whole rule: t_scale now multiplies by 10 instead of 2.
      const scaled = await tape.backward(y, {
        seed,
        rules: { ops: { t_scale: async (dy) => [await scale(dy, 10)] }, activations: { relu: identity } },
      });
      expect([...(await scaled.of(x).read())]).toEqual([10, -10, 10]);
      scaled.dispose();
      // @ts-expect-error: rule names are typed (a JavaScript caller gets the error below)
      await expect(tape.backward(y, { seed, rules: { activations: { relu: 'no-such-rule' } } })).rejects.toThrow(
        /unknown backward rule 'no-such-rule' for relu/,
      );
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(start.inUse); // the rejected call released the seed
  });

  it('hooks capture a named layer activation and gradient; unknown names list the layers', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2], [2]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const hook = tape.hook('double');
      const z = await tape.run(async () => {
        const a = nameOutput(gpu, 'double', await tScale(x, 2));
        return nameOutput(gpu, 'square', await tMul(a, a));
      });
      const grads = await tape.backward(z);
      expect([...(await hook.activation!.read())]).toEqual([2, 4]);
      expect([...(await hook.gradient!.read())]).toEqual([4, 8]); // d(a²)/da = 2a
      expect([...(await tape.activation('square').read())]).toEqual([4, 16]);
      expect(tape.layerNames).toEqual(['double', 'square']);
      grads.dispose();
      tape.hook('conv9');
      await expect(tape.backward(z)).rejects.toThrow("unknown layer 'conv9'; layers: double, square");
      expect(() => tape.activation('nope')).toThrow(/unknown layer 'nope'/);
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(start.inUse);
  });

  it('releaseSaved frees the forward pass\'s tensors during backward, with the same gradients; hooks keep theirs', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    const x = tensor(gpu, [1, 2, 3], [3]);
    // x → a = 2x → b = a·a → c = 3b, the intermediates' own references dropped as Model.forward does.
    const run = async (releaseSaved: boolean) => {
      const tape = new Tape(gpu);
      tape.watch(x);
      const hook = tape.hook('double');
      const c = await tape.run(async () => {
        const a = nameOutput(gpu, 'double', await tScale(x, 2));
        const b = nameOutput(gpu, 'square', await tMul(a, a));
        a.dispose();
        const out = await tScale(b, 3);
        b.dispose();
        return out;
      });
      const grads = await tape.backward(c, { releaseSaved });
      const held = gpu.memory().inUse; // x, c, the gradient, the hook's captures, and what the tape still holds
      const dx = [...(await grads.of(x).read())];
      expect([...(await hook.activation!.read())]).toEqual([2, 4, 6]);
      expect([...(await hook.gradient!.read())]).toEqual([12, 24, 36]); // d(3a²)/da = 6a
      if (releaseSaved) {
        await expect(tape.backward(c)).rejects.toThrow('backward: this tape released its saved tensors in an earlier backward({ releaseSaved: true })');
        expect(() => tape.activation('square')).toThrow(/released its saved tensors/);
      }
      grads.dispose();
      tape.dispose();
      c.dispose();
      return { dx, held };
    };
    const kept = await run(false);
    const released = await run(true);
    expect(released.dx).toEqual([24, 48, 72]); // d(12x²)/dx = 24x
    expect(released.dx).toEqual(kept.dx);
    // b (named 'square', saved by both ops that use it) is gone; a stays with the hook.
    expect(released.held).toBe(kept.held - 1);
    x.dispose();
    expect(gpu.memory().inUse).toBe(start.inUse);
  });

  it('stopAtHooks back-propagates only down to the hooked layers', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2], [2]);
      const w = tensor(gpu, [3, 5], [2]);
      w.requiresGrad = true;
      const tape = new Tape(gpu);
      tape.watch(x);
      const hook = tape.hook('a');
      // b = 3x (before the hook), a = b·w, z = a·a + b: b feeds z both through the hook and around it.
      let scaleCalls = 0;
      const z = await tape.run(async () => {
        const b = await tScale(x, 3);
        const a = nameOutput(gpu, 'a', await tMul(b, w));
        return tAdd(await tMul(a, a), b);
      });
      registerBackward('t_scale', async (dy, ctx) => {
        scaleCalls++;
        return [await scale(dy, ctx.saved.k as number)];
      });
      try {
        mulBackwardCalls = [];
        const grads = await tape.backward(z, { stopAtHooks: true });
        // dz/da = 2a = 2·(3x·w) = [18, 60], as without stopAtHooks; nothing upstream of the hook
        // (b·w's backward, the scale, x and w) is computed.
        expect([...(await hook.gradient!.read())]).toEqual([18, 60]);
        expect(grads.get(x)).toBeUndefined();
        expect(grads.get(w)).toBeUndefined();
        expect(scaleCalls).toBe(0);
        expect(mulBackwardCalls).toEqual([[true, true]]); // a·a only
        grads.dispose();
        const full = await tape.backward(z);
        expect([...(await hook.gradient!.read())]).toEqual([18, 60]);
        // dz/dx = 3·(2a·w + 1) = 18·x·w² + 3.
        expect([...(await full.of(x).read())]).toEqual([18 * 1 * 9 + 3, 18 * 2 * 25 + 3]);
        expect(scaleCalls).toBe(1);
        full.dispose();
      } finally {
        tape.dispose();
        registerBackward('t_scale', async (dy, ctx) => [await scale(dy, ctx.saved.k as number)]);
      }
    });
    expect(gpu.memory().inUse).toBe(start.inUse);
  });

  it('checks the seed shape', async () => {
    const gpu = await getGpu();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2], [2]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(() => tScale(x, 2));
      await expect(tape.backward(y, { seed: tensor(gpu, [1, 2, 3], [3]) })).rejects.toThrow(/seed \[3\] does not match output \[2\]/);
      tape.dispose();
    });
  });

  it('frees everything when a backward rule throws or returns a wrong-size gradient', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2, 3], [3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(async () => tScale(await tScale(x, 2), 3));
      await expect(tape.backward(y, { rules: { ops: { t_scale: async () => { throw new Error('rule failed'); } } } })).rejects.toThrow('rule failed');
      // A rule may return its gradient in another shape of the same size; it is reshaped to the
      // input's. Both t_scale ops pass dy on unscaled here, so dx is the default seed: ones.
      const passed = await tape.backward(y, { rules: { ops: { t_scale: async (dy) => [await scale(dy.reshape([3, 1]), 1), null] } } });
      expect(passed.get(x)!.shape).toEqual([3]);
      expect([...(await passed.get(x)!.read())]).toEqual([1, 1, 1]);
      passed.dispose();
      await expect(
        tape.backward(y, { rules: { ops: { t_scale: async () => [tensor(gpu, [1, 2], [2])] } } }),
      ).rejects.toThrow(/returned a gradient of shape \[2\] for input \[3\]/);
      await expect(tape.backward(y, { rules: { ops: { maxpool: async () => [] } } })).rejects.toThrow(/unknown op 'maxpool'/);
      tape.dispose();
    });
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(start.inUse);
    expect(gpu.memory().tensors).toBe(start.tensors);
  });

  it('keeps gradients returned from a scope, and views stay connected to the graph', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, [1, 2, 3, 4], [2, 2]);
    const tape = new Tape(gpu);
    tape.watch(x);
    const grads = await gpu.scope(async () => {
      const y = await tape.run(async () => tMul(x.reshape([4]), x.reshape([4])));
      return tape.backward(y);
    });
    expect([...(await grads.of(x).read())]).toEqual([2, 4, 6, 8]); // d(x²)/dx through two views
    grads.dispose();
    tape.dispose();
    x.dispose();
  });

  it('every hook on a tensor with two names gets the gradient; a backward that misses a hook clears it', async () => {
    const gpu = await getGpu();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 2], [2]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const h1 = tape.hook('relu1');
      const h2 = tape.hook('block1');
      let a!: Tensor;
      const y = await tape.run(async () => {
        a = await tScale(x, 2);
        nameOutput(gpu, 'relu1', a);
        nameOutput(gpu, 'block1', a);
        return tScale(a, 3);
      });
      (await tape.backward(y)).dispose();
      expect([...(await h1.gradient!.read())]).toEqual([3, 3]);
      expect([...(await h2.gradient!.read())]).toEqual([3, 3]);
      const z = await tape.run(() => tScale(x, 5)); // does not pass through the hooked layer
      (await tape.backward(z)).dispose();
      expect(h1.gradient).toBeNull();
      tape.dispose();
    });
  });
});

describe('makeGrads (the bookkeeping of rules that make several gradients)', () => {
  it('returns the gradients the body made, null where it made none, and frees its temps', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const temp = tensor(gpu, [1, 2], [2]);
    const grads = await makeGrads(3, async (g, temps) => {
      temps.push(temp);
      g[1] = await scale(temp, 2);
    });
    expect(grads[0]).toBeNull();
    expect(grads[2]).toBeNull();
    expect([...(await grads[1]!.read())]).toEqual([2, 4]);
    expect(temp.isDisposed).toBe(true);
    grads[1]!.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('when the body throws, frees the gradients made so far and the temps, and passes the error on', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    let made: Tensor | undefined;
    let temp: Tensor | undefined;
    await expect(
      makeGrads(2, async (g, temps) => {
        temp = tensor(gpu, [1, 2], [2]);
        temps.push(temp);
        made = g[0] = await scale(temp, 3);
        throw new Error('the second gradient failed');
      }),
    ).rejects.toThrow('the second gradient failed');
    expect(made!.isDisposed).toBe(true);
    expect(temp!.isDisposed).toBe(true);
    expect(gpu.memory().inUse).toBe(before);
  });
});
