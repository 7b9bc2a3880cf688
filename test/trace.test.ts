/**
 * The step-through trace, on the network of tiny-model.ts, small enough to follow by hand: every
 * expected value is derived in the comments.
 *
 *   conv1 + relu1 (fused): map 0 = [[1, 2], [4, 5]], map 1 = relu([[-5, -6], [-8, 9]]) = [[0, 0], [0, 9]]
 *   flat: [1, 2, 4, 5, 0, 0, 0, 9];  fc: class 1 weighs [0, 0, 0, 0, 1, 1, 1, -1]
 */
import { describe, expect, it } from 'vitest';
import { Tape } from '../src/autodiff/tape.js';
import { formatTrace, formatTraceComparison, tensorStats, type Trace } from '../src/autodiff/trace.js';
import { maxPool2d } from '../src/autodiff/ops/pool.js';
import { sum } from '../src/autodiff/ops/reduce.js';
import { modelFromSpec } from '../src/nets/model.js';
import { ArgumentError } from '../src/runtime/errors.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { RULES, type RuleSet } from '../src/saliency/core.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu } from './helpers.js';
import { X, setupTiny, tinyGapSpec } from './tiny-model.js';

const setup = setupTiny;

/** Forward with a trace, then a backward pass for class 1 with the given rules and trace mode. */
async function traced(rules: RuleSet, mode: true | 'tensors' = true) {
  const { gpu, model, x } = await setup();
  const tape = new Tape(gpu);
  tape.watch(x);
  const out = await tape.run(() => model.forward(x, { logits: true }), { trace: mode });
  const seed = tensor(gpu, [0, 1], [1, 2]);
  const grads = await tape.backward(out, { seed, rules: RULES[rules], trace: mode });
  seed.dispose();
  return { gpu, model, x, tape, out, grads };
}

describe('the forward trace', () => {
  it('one entry per op with its layer (fused layers named), shapes, kernels and output statistics', async () => {
    const { model, x, tape, out, grads } = await traced('ordinary');
    const f = tape.forwardTrace!;
    expect(f.pass).toBe('forward');
    expect(f.entries.map((e) => [e.op, e.layer, e.fusedLayers])).toEqual([
      ['conv2d', 'relu1', ['conv1']],
      ['reshape', 'flat', []],
      ['linear', 'fc', []],
    ]);
    const [conv, flat, fc] = f.entries as [Trace['entries'][number], Trace['entries'][number], Trace['entries'][number]];
    expect(conv.inputShapes).toEqual([[1, 1, 3, 3], [2, 1, 2, 2], [2]]);
    expect(conv.outputShape).toEqual([1, 2, 2, 2]);
    expect(conv.kernels.length).toBeGreaterThan(0);
    expect(conv.kernels.every((k) => k.name.startsWith('conv2d'))).toBe(true);
    expect(flat.kernels).toEqual([]); // a view: no kernel
    expect(fc.kernels.length).toBeGreaterThan(0);
    // relu1's output [1, 2, 4, 5, 0, 0, 0, 9]: min 0, max 9, mean |y| 21/8, 3 zeros of 8.
    expect(conv.output).toEqual({ min: 0, max: 9, meanAbs: 21 / 8, zeros: 3 / 8, size: 8 });
    expect(conv.step).toBe(0);
    out.dispose();
    grads.dispose();
    tape.dispose();
    x.dispose();
    model.dispose();
  });

  it('traces ops the tape does not record (nothing watched, as in CAM)', async () => {
    const { gpu, model, x } = await setup();
    const tape = new Tape(gpu);
    const out = await tape.run(() => model.forward(x), { trace: true });
    expect(tape.forwardTrace!.entries.map((e) => [e.op, e.step])).toEqual([
      ['conv2d', null],
      ['reshape', null],
      ['linear', null],
    ]);
    out.dispose();
    tape.dispose();
    x.dispose();
    model.dispose();
  });
});

describe('the backward trace', () => {
  it('vanilla, guided and DeconvNet part at the ReLU: the share of zeros right after the rule', async () => {
    const after: Record<string, number> = {};
    const values: Record<string, number[]> = {};
    for (const rules of ['ordinary', 'guided', 'deconv'] as const) {
      const { model, x, tape, out, grads } = await traced(rules);
      const b = grads.trace!;
      expect(b.pass).toBe('backward');
      // Reverse order of the tape: fc, flat, conv1+relu1.
      expect(b.entries.map((e) => [e.op, e.layer, e.step])).toEqual([
        ['linear', 'fc', 2],
        ['reshape', 'flat', 1],
        ['conv2d', 'relu1', 0],
      ]);
      const [fc, , conv] = b.entries;
      // The seed [0, 1] comes in at fc; fc sends class 1's weights [0, 0, 0, 0, 1, 1, 1, -1] down.
      expect(fc!.incoming).toEqual({ min: 0, max: 1, meanAbs: 0.5, zeros: 0.5, size: 2 });
      expect(fc!.outgoing![0]).toEqual({ min: -1, max: 1, meanAbs: 0.5, zeros: 0.5, size: 8 });
      expect(fc!.rules).toEqual([]);
      const rule = conv!.rules[0]!;
      expect(rule.kind === 'activation' && [rule.activation, rule.rule, rule.fused]).toEqual(['relu', rules, true]);
      after[rules] = rule.kind === 'activation' ? rule.after.zeros : NaN;
      expect(conv!.kernels.map((k) => k.name)).toContain(`activation_backward.relu_${rules}`);
      expect(conv!.kernels.find((k) => k.name.startsWith('activation_backward'))!.workgroups).toEqual([1, 1, 1]);
      expect(conv!.outgoing![1]).toBeNull(); // the weights need no gradient
      values[rules] = [...(await grads.of(x).read())];
      out.dispose();
      grads.dispose();
      tape.dispose();
      x.dispose();
      model.dispose();
    }
    // g = [0, 0, 0, 0, 1, 1, 1, -1] reaches relu1, whose forward output is [1, 2, 4, 5, 0, 0, 0, 9]:
    // ordinary keeps g where y > 0 → [0, 0, 0, 0, 0, 0, 0, -1] (7 zeros of 8);
    // guided also needs g > 0 → all zero; deconv keeps g > 0 whatever y → [0, 0, 0, 0, 1, 1, 1, 0] (5 zeros).
    expect(after).toEqual({ ordinary: 7 / 8, guided: 1, deconv: 5 / 8 });
    // The trace changes nothing: these are saliency.test.ts's hand-derived gradients for class 1.
    expect(values.ordinary).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(values.guided).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("max pooling's backward is traced as 'switches'", async () => {
    const gpu = await getGpu();
    await gpu.scope(async () => {
      const x = tensor(gpu, [1, 5, 3, 2, 0, 4, 7, 6, 8], [1, 1, 3, 3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(async () => sum(await maxPool2d(x, { kernel: 2, stride: 1 })));
      const grads = await tape.backward(y, { trace: true });
      expect(grads.trace!.entries.map((e) => [e.op, e.rules.map((r) => r.rule)])).toEqual([
        ['sum', []],
        ['maxpool2d', ['switches']],
      ]);
      // Windows' maxima 5, 4, 8, 8 (switches at 5, 4 and twice at 8): 3 nonzero input gradients of 9.
      expect(grads.trace!.entries[1]!.outgoing![0]!.zeros).toBeCloseTo(6 / 9, 6);
      grads.dispose();
      tape.dispose();
    });
  });

  it("with trace: 'tensors', max pooling's entry keeps the switches it unpooled through, until the trace is disposed", async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    const x = tensor(gpu, [1, 5, 3, 2, 0, 4, 7, 6, 8], [1, 1, 3, 3]);
    const tape = new Tape(gpu);
    tape.watch(x);
    let pooled: Tensor | null = null;
    const y = await tape.run(async () => sum((pooled = await maxPool2d(x, { kernel: 2, stride: 1 }))));
    const grads = await tape.backward(y, { trace: 'tensors' });
    const trace = grads.takeTrace()!;
    grads.dispose();
    tape.dispose();
    for (const t of [y, pooled!, x]) t.dispose();
    const rule = trace.entries[1]!.rules[0]!;
    expect(rule.kind).toBe('switches');
    if (rule.kind !== 'switches') return;
    // The 2×2 windows of [[1, 5, 3], [2, 0, 4], [7, 6, 8]] have their maxima at flat indices 1 (5),
    // 1 (5), 6 (7) and 8 (8).
    expect(rule.tensors!.switches.shape).toEqual([1, 1, 2, 2]);
    expect([...(await rule.tensors!.switches.readInt32())]).toEqual([1, 1, 6, 8]);
    expect(JSON.stringify(trace.toJSON())).not.toContain('Tensor');
    expect(gpu.memory().tensors).toBeGreaterThan(start.tensors);
    trace.dispose();
    expect(gpu.memory().tensors).toBe(start.tensors);
  });

  it("trace: 'tensors' keeps the tensors until the trace is disposed, and frees them then", async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    {
      const { model, x, tape, out, grads } = await traced('guided', 'tensors');
      const b = grads.takeTrace()!;
      const f = tape.takeForwardTrace()!;
      out.dispose();
      grads.dispose();
      tape.dispose();
      x.dispose();
      model.dispose();
      // Everything else is freed; the traces still hold their tensors.
      expect(gpu.memory().tensors).toBeGreaterThan(start.tensors);
      const conv = b.entries[2]!;
      expect([...(await conv.tensors!.incoming!.read())]).toEqual([0, 0, 0, 0, 1, 1, 1, -1]);
      const rule = conv.rules[0]!;
      expect(rule.kind === 'activation' && [...(await rule.tensors!.y.read())]).toEqual([1, 2, 4, 5, 0, 0, 0, 9]);
      expect(rule.kind === 'activation' && [...(await rule.tensors!.after.read())]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
      expect([...(await f.entries[0]!.tensors!.output!.read())]).toEqual([1, 2, 4, 5, 0, 0, 0, 9]);
      expect(tensorStats(await b.entries[0]!.tensors!.incoming!.read())).toEqual(b.entries[0]!.incoming);
      b.dispose();
      f.dispose();
    }
    expect(gpu.memory().tensors).toBe(start.tensors);
    expect(gpu.memory().inUse).toBe(start.inUse);
  });

  it('a trace left with its Gradients and Tape is freed with them; bad trace options allocate nothing', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    {
      const { model, x, tape, out, grads } = await traced('deconv', 'tensors');
      out.dispose();
      grads.dispose(); // frees the backward trace
      tape.dispose(); // frees the forward trace
      x.dispose();
      model.dispose();
    }
    expect(gpu.memory().tensors).toBe(start.tensors);
    const { model, x } = await setup();
    const tape = new Tape(gpu);
    tape.watch(x);
    await expect(tape.run(() => model.forward(x), { trace: 'yes' as never })).rejects.toThrow(ArgumentError);
    const out = await tape.run(() => model.forward(x));
    await expect(tape.backward(out, { trace: 1 as never })).rejects.toThrow(/trace must be true, false or 'tensors', got 1/);
    out.dispose();
    tape.dispose();
    x.dispose();
    model.dispose();
    expect(gpu.memory().tensors).toBe(start.tensors);
  });

  it('prints as a table, and two traces side by side', async () => {
    const traces: { label: string; trace: Trace }[] = [];
    for (const [label, rules] of [['vanilla', 'ordinary'], ['guided', 'guided']] as const) {
      const { model, x, tape, out, grads } = await traced(rules);
      traces.push({ label, trace: grads.takeTrace()! });
      if (label === 'vanilla') {
        const text = formatTrace(tape.forwardTrace!);
        expect(text).toMatch(/^forward:\n#\s+op\s+layer/);
        expect(text).toMatch(/conv2d\s+conv1\+relu1\s+\[1, 1, 3, 3\] \[2, 1, 2, 2\] \[2\]\s+\[1, 2, 2, 2\]\s+conv2d\S*\[\d+/);
      }
      out.dispose();
      grads.dispose();
      tape.dispose();
      x.dispose();
      model.dispose();
    }
    const table = formatTrace(traces[1]!.trace);
    expect(table).toMatch(/conv2d\s+conv1\+relu1\s+relu guided \(fused\)\s+\[1, 2, 2, 2\]/);
    expect(table).toContain('activation_backward.relu_guided[1]');
    const side = formatTraceComparison(traces).split('\n');
    expect(side[0]).toMatch(/^layer\s+activation\s+vanilla \(ordinary\)\s+guided \(guided\)$/);
    // Half of the gradient reaching relu1 is zero ([0, 0, 0, 0, 1, 1, 1, -1]); 7/8 after the ordinary rule, 8/8 after the guided one.
    expect(side[2]).toMatch(/^conv1\+relu1\s+relu \(fused\)\s+50\.0% → 87\.5%\s+50\.0% → 100\.0%$/);
  });
});

describe('methods with trace: true', () => {
  it('return { result, trace } next to the same map; the passes are labelled by rule', async () => {
    const { gpu, model, x } = await setup();
    const start = gpu.memory();
    for (const [method, rule] of [
      ['vanilla', 'ordinary'],
      ['guidedBackprop', 'guided'],
      ['deconvnet', 'deconv'],
    ] as const) {
      const plain = await saliency[method](model, x, { target: 1 });
      const { result, trace } = await saliency[method](model, x, { target: 1, trace: true });
      expect([...(await result.read())]).toEqual([...(await plain.read())]);
      expect(trace.method).toBe(method);
      expect(trace.passes.map((p) => p.label)).toEqual(['forward', `backward (${rule} rule)`]);
      const conv = trace.backward[0]!.forLayer('conv1')[0]!;
      expect(conv.rules.map((r) => r.rule)).toEqual([rule]);
      plain.dispose();
      result.dispose();
      trace.dispose();
    }
    expect(gpu.memory().tensors).toBe(start.tensors);
    x.dispose();
    model.dispose();
  });

  it('Grad-CAM stops at its layer; Guided Grad-CAM makes two backward passes; CAM one forward pass; SmoothGrad one pair per batch', async () => {
    const { gpu, model, x } = await setup();
    const start = gpu.memory();
    const g = await saliency.gradCam(model, x, { target: 0, layer: 'relu1', trace: true });
    expect(g.trace.passes.map((p) => p.label)).toEqual(['forward', 'backward (ordinary rule, down to relu1)']);
    // The hook asks for relu1's output, which conv1+relu1 computes fused; the backward pass stops there.
    expect(g.trace.forward[0]!.entries.map((e) => e.layer)).toEqual(['relu1', 'flat', 'fc']);
    // The gradient reaches relu1 (the hook reads it: Grad-CAM's α), and nothing below it is computed.
    expect(g.trace.backward[0]!.entries.map((e) => e.layer)).toEqual(['fc', 'flat', 'relu1']);
    const atHook = g.trace.backward[0]!.entries[2]!;
    expect([atHook.kernels, atHook.rules, atHook.outgoing]).toEqual([[], [], [null, null, null]]);
    expect(atHook.incoming!.size).toBe(8);
    const gg = await saliency.guidedGradCam(model, x, { target: 0, layer: 'relu1', trace: true });
    expect(gg.trace.passes.map((p) => p.label)).toEqual(['forward', 'backward (ordinary rule, down to relu1)', 'backward (guided rule)']);
    const sg = await saliency.smoothGrad(model, x, { target: 0, samples: 2, batchSize: 1, trace: true });
    expect(sg.trace.passes.map((p) => p.pass)).toEqual(['forward', 'backward', 'forward', 'backward']);
    const viaRegistry = await saliency.runMethod('guidedBackprop', model, x, { target: 0, trace: 'tensors' });
    expect(viaRegistry.trace.mode).toBe('tensors');
    expect(viaRegistry.trace.backward[0]!.entries[0]!.tensors!.incoming).toBeDefined();
    expect(JSON.parse(JSON.stringify(viaRegistry.trace)).passes[1].entries[0].tensors).toBeUndefined();
    for (const r of [g, gg, sg, viaRegistry]) {
      r.result.dispose();
      r.trace.dispose();
    }
    expect(gpu.memory().tensors).toBe(start.tensors);
    // A failing traced run frees its trace too.
    await expect(saliency.vanilla(model, x, { target: 5, trace: 'tensors' })).rejects.toThrow(/out of range/);
    await expect(saliency.vanilla(model, x, { target: 0, trace: 'all' as never })).rejects.toThrow(/trace must be true, false or 'tensors'/);
    expect(gpu.memory().tensors).toBe(start.tensors);
    x.dispose();
    model.dispose();
  });

  it('CAM traces its forward pass (nothing is watched)', async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, tinyGapSpec, undefined, { seed: 2 });
    const x = tensor(gpu, X, [1, 1, 3, 3]);
    const { result, trace } = await saliency.cam(model, x, { target: 0, trace: true });
    expect(trace.passes.map((p) => p.label)).toEqual(['forward']);
    expect(trace.forward[0]!.entries.map((e) => [e.op, e.layer])).toEqual([
      ['conv2d', 'relu1'],
      ['globalavgpool', 'gap'],
      ['linear', 'fc'],
    ]);
    result.dispose();
    x.dispose();
    model.dispose();
  });
});
