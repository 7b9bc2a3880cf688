/**
 * Malformed TF.js model.json files (a real one, human's emotion model, with one field broken): each
 * gives a SaliencyError naming the problem, never a TypeError, RangeError or DOMException. The CLI
 * side of the same cases is in test/cli-security.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTfjsModel } from '../src/nets/tfjs-layers.js';
import { FormatError, SaliencyError } from '../src/runtime/errors.js';
import { getGpu } from './helpers.js';
import { HUMAN, MALFORMED_MODEL_JSON, writeMalformedModel, type Json } from './security-cases.js';

const dir = mkdtempSync(join(tmpdir(), 'saliency-security-tfjs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const writeModel = (name: string, change: (j: Json) => void) => writeMalformedModel(dir, name, change);

async function failure(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('malformed model.json fields give a SaliencyError', () => {
  for (const [name, change, message] of MALFORMED_MODEL_JSON) {
    it(name, async () => {
      const gpu = await getGpu();
      const before = gpu.memory().tensors;
      const err = await failure(() => loadTfjsModel(gpu, writeModel(name, change)));
      expect(err, `${err.name}: ${err.message}`).toBeInstanceOf(SaliencyError);
      expect(err.message).toMatch(message);
      expect(gpu.memory().tensors).toBe(before);
    });
  }

  it('a placeholder of 100000×100000 is refused by the tensor limit', async () => {
    const gpu = await getGpu();
    const file = writeModel('huge', (j) => {
      const p = j.modelTopology.node.find((n) => n.op === 'Placeholder')!;
      (p.attr!.shape as { shape: { dim: { size: string }[] } }).shape.dim = [{ size: '-1' }, { size: '100000' }, { size: '100000' }, { size: '1' }];
    });
    const err = await failure(() => loadTfjsModel(gpu, file));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/the input \[1, 100000, 100000\] has 10000000000 elements, more than the limit of 268435456/);
  });

  it('+Inf weights are refused at load, naming the weight', async () => {
    const gpu = await getGpu();
    const file = writeModel('inf', () => {});
    const bin = readFileSync(join(HUMAN, 'emotion.bin'));
    bin.writeFloatLE(Infinity, 8); // the third value of the first weight, unknown_26 (float32)
    writeFileSync(file.replace(/json$/, 'bin'), bin);
    const err = await failure(() => loadTfjsModel(gpu, file));
    expect(err).toBeInstanceOf(SaliencyError);
    expect(err.message).toMatch(/weight 'unknown_26' holds Infinity at index 2/);
  });

  it('a FusedBatchNorm with a negative variance is refused at load, naming the node', async () => {
    const gpu = await getGpu();
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const constant = (name: string) => ({ name, op: 'Const', attr: { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '2' }] } } } } });
    const modelJson = {
      format: 'graph-model',
      modelTopology: {
        node: [
          { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '2' }, { size: '2' }, { size: '2' }] } } } },
          ...['gamma', 'beta', 'mean', 'variance'].map(constant),
          { name: 'bn', op: 'FusedBatchNormV3', input: ['x', 'gamma', 'beta', 'mean', 'variance'], attr: { epsilon: { f: 0.001 }, data_format: { s: b64('NHWC') }, is_training: { b: false } } },
        ],
      },
      weightsManifest: [{ paths: [], weights: ['gamma', 'beta', 'mean', 'variance'].map((name) => ({ name, shape: [2], dtype: 'float32' })) }],
    };
    const weights = new Float32Array([1, 1, 0, 0, 0, 0, 1, -4]);
    const err = await failure(() => loadTfjsModel(gpu, { modelJson, weights: new Uint8Array(weights.buffer) }));
    expect(err).toBeInstanceOf(SaliencyError);
    expect(err.message).toMatch(/node 'bn' \(FusedBatchNormV3\): variance\[1\] is -4; a variance must be ≥ 0/);
    weights[7] = 4;
    const model = await loadTfjsModel(gpu, { modelJson, weights: new Uint8Array(weights.buffer) });
    model.dispose();
  });

  it('a model.json that is a symlink to /dev/zero is refused, not read forever', async () => {
    const gpu = await getGpu();
    const link = join(dir, 'zero.json');
    symlinkSync('/dev/zero', link);
    const err = await failure(() => loadTfjsModel(gpu, link));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/zero\.json is not a regular file \(a character device\)/);
  });
});
