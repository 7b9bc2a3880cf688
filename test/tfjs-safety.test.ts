/**
 * TF.js model files from strangers (issue 16, graph formats): weight shards only from inside the
 * model's folder (or the model URL's origin and folder), regular files only, op names looked up in
 * a Map, declared sizes checked before allocation, malformed fields reported as FormatError. Each
 * case leaves nothing allocated on the GPU.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siblingUrl } from '../src/nets/graph/source.js';
import { loadTfjsGraphModel, type TfjsModelJson, type TfjsNode } from '../src/nets/tfjs-graph.js';
import { loadTfjsLayersModel } from '../src/nets/tfjs-layers.js';
import { FormatError, SaliencyError } from '../src/runtime/errors.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { getGpu } from './helpers.js';

let gpu: Gpu;
let dir: string;

beforeAll(async () => {
  gpu = await getGpu();
  dir = mkdtempSync(join(tmpdir(), 'tfjs-safety-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (s: string) => btoa(s);

/** x [-1, 4, 4, 2] → Conv2D (weights w, 1×1×2×3) → Relu: a graph with one weight shard. */
function tinyGraph(paths: unknown = ['w.bin']): TfjsModelJson {
  const node: TfjsNode[] = [
    { name: 'x', op: 'Placeholder', attr: { shape: { shape: { dim: [{ size: '-1' }, { size: '4' }, { size: '4' }, { size: '2' }] } } } },
    { name: 'w', op: 'Const', attr: {} },
    { name: 'conv', op: 'Conv2D', input: ['x', 'w'], attr: { strides: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: b64('VALID') } } },
    { name: 'relu', op: 'Relu', input: ['conv'] },
  ];
  return { format: 'graph-model', modelTopology: { node }, weightsManifest: [{ paths: paths as string[], weights: [{ name: 'w', shape: [1, 1, 2, 3], dtype: 'float32' }] }] };
}

const weights = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);

/** Writes model.json (and w.bin) into a fresh folder; returns the model.json path. */
function writeModel(json: unknown, name = `m${Math.random().toString(36).slice(2)}`): string {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, 'model.json'), typeof json === 'string' ? json : JSON.stringify(json));
  writeFileSync(join(d, 'w.bin'), weights);
  return join(d, 'model.json');
}

async function expectFormatError(p: Promise<unknown>, message: RegExp): Promise<void> {
  const before = gpu.memory();
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'must fail').toBeInstanceOf(FormatError);
  expect(String(err)).toMatch(message);
  expect(gpu.memory().tensors).toBe(before.tensors);
  expect(gpu.memory().inUse).toBe(before.inUse);
}

describe('weight shards stay inside the model folder', () => {
  it('loads the tiny graph as written', async () => {
    const model = await loadTfjsGraphModel(gpu, writeModel(tinyGraph()));
    expect(model.layer('relu').outputShape).toEqual([3, 4, 4]);
    model.dispose();
  });

  it('refuses ../ paths, absolute paths and links that leave the folder, without reading them', async () => {
    await expectFormatError(loadTfjsGraphModel(gpu, writeModel(tinyGraph(['../../../../etc/passwd']))), /weights file \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd lies outside the model's folder/);
    await expectFormatError(loadTfjsGraphModel(gpu, writeModel(tinyGraph(['/dev/zero']))), /weights file \/dev\/zero must be a path relative to the model's folder/);
    const path = writeModel(tinyGraph(['zero.bin']));
    symlinkSync('/dev/zero', join(path, '..', 'zero.bin'));
    await expectFormatError(loadTfjsGraphModel(gpu, path), /weights file zero.bin links to a file outside the model's folder/);
    // The error never echoes the size of a file outside.
    const err = await loadTfjsGraphModel(gpu, writeModel(tinyGraph(['../../../../etc/passwd']))).catch((e: Error) => e);
    expect(String(err)).not.toMatch(/\d+ bytes/);
  });

  it('refuses special files inside the folder and shards larger than the manifest says', async () => {
    const path = writeModel(tinyGraph(['sub']));
    mkdirSync(join(path, '..', 'sub'));
    await expectFormatError(loadTfjsGraphModel(gpu, path), /weights file .*sub is not a regular file \(a directory\)/);
    const fifo = writeModel(tinyGraph(['pipe.bin']));
    execFileSync('mkfifo', [join(fifo, '..', 'pipe.bin')]);
    await expectFormatError(loadTfjsGraphModel(gpu, fifo), /pipe.bin is not a regular file \(a FIFO\)/);
    const big = writeModel(tinyGraph(['big.bin']));
    writeFileSync(join(big, '..', 'big.bin'), new Uint8Array(1000));
    await expectFormatError(loadTfjsGraphModel(gpu, big), /big.bin is 1000 bytes, more than the limit of 24/);
  });

  it('the layers loader reads shards the same way', async () => {
    const json = {
      format: 'layers-model',
      modelTopology: {
        class_name: 'Sequential',
        config: { layers: [{ class_name: 'Flatten', config: { name: 'f', batch_input_shape: [null, 2, 2, 1] } }, { class_name: 'Dense', config: { name: 'd', units: 1 } }] },
      },
      weightsManifest: [{ paths: ['../../../../etc/passwd'], weights: [{ name: 'd/kernel', shape: [4, 1], dtype: 'float32' }] }],
    };
    await expectFormatError(loadTfjsLayersModel(gpu, writeModel(json)), /lies outside the model's folder/);
  });

  it('URLs: same origin, under the model folder', () => {
    const base = new URL('https://models.example/team/net/model.json?v=2');
    expect(siblingUrl(base, 'group1-shard1of2.bin', 'weights file').href).toBe('https://models.example/team/net/group1-shard1of2.bin');
    expect(siblingUrl(base, 'sub/w.bin', 'weights file').href).toBe('https://models.example/team/net/sub/w.bin');
    for (const bad of ['../w.bin', '/team/w.bin', 'https://evil.example/w.bin', '//evil.example/w.bin', 'sub/../../w.bin', '%2e%2e/w.bin', 'file:///etc/passwd']) {
      expect(() => siblingUrl(base, bad, 'weights file'), bad).toThrow(FormatError);
    }
  });
});

describe('op names, declared sizes and malformed fields', () => {
  it("op names such as 'constructor', 'toString' and '__proto__' are unsupported ops", async () => {
    for (const op of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const json = tinyGraph();
      (json.modelTopology as { node: TfjsNode[] }).node[3]!.op = op;
      await expectFormatError(loadTfjsGraphModel(gpu, { modelJson: json, weights }), new RegExp(`op '${op}' of node 'relu' is not supported`));
    }
  });

  it('a 100000×100000 placeholder, or a weight declaring billions of values, is refused before allocation', async () => {
    const json = tinyGraph();
    (json.modelTopology as { node: TfjsNode[] }).node[0]!.attr!.shape = { shape: { dim: [{ size: '-1' }, { size: '100000' }, { size: '100000' }, { size: '2' }] } };
    await expectFormatError(loadTfjsGraphModel(gpu, { modelJson: json, weights }), /the input \[2, 100000, 100000\] has 20000000000 elements, more than the limit of \d+/);
    const huge = tinyGraph();
    huge.weightsManifest[0]!.weights[0]!.shape = [100000, 100000, 2, 3];
    await expectFormatError(loadTfjsGraphModel(gpu, { modelJson: huge, weights }), /weight 'w' \[100000, 100000, 2, 3\] has 60000000000 elements, more than the limit/);
    const infinite = new Uint8Array(new Float32Array([1, 2, Infinity, 4, 5, 6]).buffer);
    await expectFormatError(loadTfjsGraphModel(gpu, { modelJson: tinyGraph(), weights: infinite }), /weight 'w' holds Infinity at index 2: weights must be finite/);
    const negative = tinyGraph();
    negative.weightsManifest[0]!.weights[0]!.shape = [1, -1, 2, 3];
    await expectFormatError(loadTfjsGraphModel(gpu, { modelJson: negative, weights }), /weight 'w': "shape" must be a list of non-negative integers, got \[1,-1,2,3\]/);
  });

  it('malformed fields are FormatErrors, not TypeErrors', async () => {
    const cases: [string, (j: Record<string, any>) => void, RegExp][] = [
      ['input not a list', (j) => (j.modelTopology.node[3].input = 'conv'), /node 'relu' \(Relu\): "input" must be a list of node names/],
      ['paths a string', (j) => (j.weightsManifest[0].paths = 'w.bin'), /weightsManifest group 0: "paths" must be a list of file names/],
      ['shape a string', (j) => (j.weightsManifest[0].weights[0].shape = '1,1,2,3'), /weight 'w': "shape" must be a list of non-negative integers, got "1,1,2,3"/],
      ['bad base64', (j) => (j.modelTopology.node[2].attr.padding = { s: '%%%' }), /attribute 'padding' is not valid base64/],
      ['strides not numbers', (j) => (j.modelTopology.node[2].attr.strides = { list: { i: ['x', 1, 1, 1] } }), /attribute 'strides' must be a list of integers/],
      ['placeholder shape a string', (j) => (j.modelTopology.node[0].attr.shape = { shape: { dim: 'four' } }), /attribute 'shape' is not a valid tensor shape/],
      ['node list of numbers', (j) => (j.modelTopology.node = [1, 2]), /a graph node lacks a name or an op/],
      ['weights not a list', (j) => (j.weightsManifest[0].weights = {}), /weightsManifest group 0: "weights" must be a list/],
      ['no manifest', (j) => delete j.weightsManifest, /"weightsManifest" must be a list/],
    ];
    for (const [what, mutate, message] of cases) {
      const json = structuredClone(tinyGraph()) as unknown as Record<string, any>;
      mutate(json);
      const err = await loadTfjsGraphModel(gpu, { modelJson: json, weights }).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(SaliencyError);
      expect(err, what).toBeInstanceOf(FormatError);
      expect(String(err), what).toMatch(message);
    }
    await expectFormatError(loadTfjsGraphModel(gpu, writeModel('not json {')), /is not valid JSON/);
  });
});
