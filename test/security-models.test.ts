/**
 * Model files from strangers: names from a file never become keys of plain objects (no prototype
 * pollution), declared sizes are checked against the limits before anything is allocated, and
 * values that would give NaN are refused where they are first seen.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { modelFromSafetensors, modelFromSpec } from '../src/nets/model.js';
import { parseSafetensors, serializeSafetensors, type NamedArray } from '../src/nets/safetensors.js';
import type { ModelSpec } from '../src/nets/spec.js';
import { FormatError, SaliencyError } from '../src/runtime/errors.js';
import { readModelFile } from '../src/runtime/files.js';
import { getGpu } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'saliency-security-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY: ModelSpec = {
  name: 'tiny',
  input: [1, 4, 4],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 3, padding: 1 },
    { name: 'relu1', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'fc2', type: 'linear', in: 2, out: 3 },
  ],
};

const ones = (shape: number[]): NamedArray => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });

const TINY_WEIGHTS: Record<string, NamedArray> = {
  'conv1.weight': ones([2, 1, 3, 3]),
  'conv1.bias': ones([2]),
  'fc2.weight': ones([3, 2]),
  'fc2.bias': ones([3]),
};

function file(tensors: Record<string, NamedArray>, spec: ModelSpec | object = TINY): Uint8Array {
  return serializeSafetensors(tensors, { spec: JSON.stringify(spec) });
}

async function failure(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

const proto = Object.prototype as Record<string, unknown>;
afterEach(() => {
  // A failure before the fix must not poison the rest of the run.
  delete proto.allowMissing;
  delete (Object as unknown as Record<string, unknown>).weight;
});

describe('prototype pollution', () => {
  it("a tensor named '__proto__.allowMissing' neither pollutes Object.prototype nor lets a later file load with missing weights", async () => {
    const gpu = await getGpu();
    const err = await failure(() => modelFromSafetensors(gpu, file({ ...TINY_WEIGHTS, '__proto__.allowMissing': ones([1]) }), undefined, 'evil.safetensors'));
    expect(err).toBeInstanceOf(SaliencyError);
    expect(err.message).toMatch(/evil\.safetensors.*'__proto__'/);
    expect(proto.allowMissing).toBeUndefined();
    expect(({} as Record<string, unknown>).allowMissing).toBeUndefined();
    // A later file that lacks fc2.weight must still be refused.
    const { 'fc2.weight': _, ...missing } = TINY_WEIGHTS;
    const later = await failure(() => modelFromSafetensors(gpu, file(missing), undefined, 'later.safetensors'));
    expect(later.message).toMatch(/layer 'fc2' \(linear\): missing 'weight'/);
  });

  it("a tensor named 'constructor.weight' does not write onto the Object constructor", async () => {
    const gpu = await getGpu();
    const err = await failure(() => modelFromSafetensors(gpu, file({ ...TINY_WEIGHTS, 'constructor.weight': ones([1]) }), undefined, 'ctor.safetensors'));
    expect(err).toBeInstanceOf(SaliencyError);
    expect(err.message).toMatch(/'constructor'.*not a layer of the spec/);
    expect((Object as unknown as Record<string, unknown>).weight).toBeUndefined();
  });

  it("layers named 'constructor', 'toString' and '__proto__' load with their own weights, and only those", async () => {
    const gpu = await getGpu();
    const spec: ModelSpec = {
      input: [2, 1, 1],
      layers: [
        { name: 'constructor', type: 'conv2d', in: 2, out: 2, kernel: 1 },
        { name: 'toString', type: 'relu' },
        { name: 'flat', type: 'flatten' },
        { name: '__proto__', type: 'linear', in: 2, out: 1 },
      ],
    };
    const weights = {
      'constructor.weight': { shape: [2, 2, 1, 1], data: Float32Array.from([1, 0, 0, 1]) },
      'constructor.bias': { shape: [2], data: Float32Array.from([0, 0]) },
      '__proto__.weight': { shape: [1, 2], data: Float32Array.from([2, 3]) },
      '__proto__.bias': { shape: [1], data: Float32Array.from([1]) },
    };
    const model = modelFromSafetensors(gpu, file(weights, spec));
    try {
      expect(model.layerNames).toEqual(['constructor', 'toString', 'flat', '__proto__']);
      expect([...(await model.layer('__proto__').params.get('weight')!.read())]).toEqual([2, 3]);
    } finally {
      model.dispose();
    }
    // Without weights for 'constructor', the inherited Object constructor must not stand in for them.
    const { 'constructor.weight': _w, 'constructor.bias': _b, ...rest } = weights;
    const err = await failure(() => modelFromSafetensors(gpu, file(rest, spec)));
    expect(err.message).toMatch(/layer 'constructor' \(conv2d\): no weights given/);
  });

  it('metadata keys are not object keys with a prototype', () => {
    const bytes = serializeSafetensors({ a: ones([1]) }, { ['__proto__']: 'x', toString: 'y' } as Record<string, string>);
    const { metadata } = parseSafetensors(bytes);
    expect(Object.getPrototypeOf(metadata)).toBeNull();
    expect(metadata.toString).toBe('y');
  });
});

describe('malformed specs (found by the fuzz suite)', () => {
  it('layer fields of the wrong type give an ArgumentError naming the field, not a TypeError', async () => {
    const gpu = await getGpu();
    const cases: [object, RegExp][] = [
      [{ name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: null }, /layer 'conv1' \(conv2d\): "kernel" must be a positive integer or a pair of them, got null/],
      [{ name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 3, stride: [1] }, /"stride" must be a positive integer or a pair of them, got \[1\]/],
      [{ name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 3, dilation: '2' }, /"dilation" must be a positive integer or a pair of them, got "2"/],
      [{ name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 3, padding: [1, null] }, /invalid padding \[1,null\]/],
      [{ name: 'pool', type: 'maxpool2d', kernel: { a: 1 } }, /layer 'pool' \(maxpool2d\): "kernel" must be a positive integer or a pair of them/],
      [{ name: 7, type: 'relu' }, /layer 0 \(relu\) has a name that is not a non-empty string: 7/],
    ];
    for (const [layer, message] of cases) {
      const spec = { input: [1, 4, 4], layers: [layer, { name: 'gap', type: 'gap' }] };
      const err = await failure(() => modelFromSafetensors(gpu, file({}, spec), undefined, 'bad.safetensors'));
      expect(err, `${err.name}: ${err.message}`).toBeInstanceOf(SaliencyError);
      expect(err.message).toMatch(message);
    }
  });
});

describe('declared sizes against the limits', () => {
  it('a spec with input [3, 20000, 20000] is refused before anything is allocated', async () => {
    const gpu = await getGpu();
    const spec = { input: [3, 20000, 20000], layers: [{ name: 'gap', type: 'gap' }] };
    const err = await failure(() => modelFromSafetensors(gpu, file({}, spec), undefined, 'big.safetensors'));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/big\.safetensors: the model input \[3, 20000, 20000\] has 1200000000 elements, more than the limit of 268435456 \(raise it with setLimits\(\{ maxTensorElements \}\)/);
  });

  it('a layer whose output or weights would exceed the limit is refused', async () => {
    const gpu = await getGpu();
    const wide: ModelSpec = { input: [1, 64, 64], layers: [{ name: 'conv1', type: 'conv2d', in: 1, out: 100000, kernel: 64, padding: 0 }] };
    const err = await failure(() => modelFromSpec(gpu, wide));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/layer 'conv1' \(conv2d\): weight \[100000, 1, 64, 64\] has 409600000 elements, more than the limit/);
    const padded: ModelSpec = { input: [1, 8, 8], layers: [{ name: 'conv1', type: 'conv2d', in: 1, out: 64, kernel: 1, padding: 5000 }] };
    const err2 = await failure(() => modelFromSpec(gpu, padded));
    expect(err2.message).toMatch(/layer 'conv1' \(conv2d\): output \[64, 10008, 10008\] has \d+ elements, more than the limit/);
    expect(gpu.memory().tensors).toBe(0);
  });

  it('the tensor limit can be set per call', async () => {
    const gpu = await getGpu();
    const err = await failure(() => modelFromSafetensors(gpu, file(TINY_WEIGHTS), undefined, 'tiny.safetensors', { limits: { maxTensorElements: 10 } }));
    expect(err.message).toMatch(/tiny\.safetensors.* has 18 elements, more than the limit of 10/);
    const spec = JSON.stringify({ ...TINY, input: [1, 40, 40] });
    const err2 = await failure(() => modelFromSpec(gpu, JSON.parse(spec), undefined, { limits: { maxTensorElements: 1000 } }));
    expect(err2.message).toMatch(/the model input \[1, 40, 40\] has 1600 elements, more than the limit of 1000/);
    expect(() => parseSafetensors(file(TINY_WEIGHTS), 'tiny.safetensors', { limits: { maxTensorElements: 10 } })).toThrow(/tensor 'conv1\.weight' of shape \[2, 1, 3, 3\] has 18 elements, more than the limit of 10/);
  });

  it('a symlink to /dev/zero is refused, and a file over the byte limit is refused before it is read', () => {
    const link = join(dir, 'x.safetensors');
    symlinkSync('/dev/zero', link);
    expect(() => readModelFile(link)).toThrow(/x\.safetensors is not a regular file \(a character device\)/);
    const real = join(dir, 'tiny.safetensors');
    writeFileSync(real, file(TINY_WEIGHTS));
    expect(readModelFile(real).length).toBeGreaterThan(100);
    expect(() => readModelFile(real, { maxModelBytes: 100 })).toThrow(/tiny\.safetensors is \d+ bytes, more than the limit of 100 \(raise it with .*SALIENCY_MAX_MODEL_BYTES/);
  });
});

describe('values that give NaN', () => {
  it('a batch-norm layer with a negative running variance is refused at load, naming it', async () => {
    const gpu = await getGpu();
    const spec: ModelSpec = { input: [2, 2, 2], layers: [{ name: 'bn', type: 'batchnorm', features: 2 }] };
    const weights = {
      bn: { weight: [1, 1], bias: [0, 0], running_mean: [0, 0], running_var: [1, -4] },
    };
    const err = await failure(() => modelFromSpec(gpu, spec, weights));
    expect(err).toBeInstanceOf(SaliencyError);
    expect(err.message).toMatch(/layer 'bn' \(batchnorm\): running_var\[1\] is -4; a variance must be ≥ 0 \(with eps, the scale 1\/√\(var \+ eps\) would be NaN\)/);
    expect(gpu.memory().tensors).toBe(0);
  });

  it('+Inf weights are refused at load', async () => {
    const gpu = await getGpu();
    const bad = { ...TINY_WEIGHTS, 'fc2.bias': { shape: [3], data: Float32Array.from([0, Infinity, 0]) } };
    const err = await failure(() => modelFromSafetensors(gpu, file(bad)));
    expect(err.message).toMatch(/layer 'fc2' \(linear\): bias\[1\] is Infinity; weights must be finite/);
  });
});
