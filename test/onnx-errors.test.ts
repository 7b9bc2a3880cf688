/**
 * ONNX files from strangers: each bad file gives one clear FormatError before any large
 * allocation, and leaves nothing allocated on the GPU. The models are built here with the
 * importer's own protobuf schema (encodeModelProto).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOnnxModel, type OnnxModelOptions } from '../src/nets/onnx/model.js';
import { SUPPORTED_ONNX_OPS } from '../src/nets/onnx/ops/index.js';
import { DATA_TYPES, encodeModelProto, type OnnxModelProto, type OnnxNodeProto, type OnnxTensorProto } from '../src/nets/onnx/schema.js';
import { ArgumentError, FormatError } from '../src/runtime/errors.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor } from '../src/runtime/tensor.js';
import { getGpu } from './helpers.js';

let gpu: Gpu;
let dir: string;
beforeAll(async () => {
  gpu = await getGpu();
  dir = mkdtempSync(join(tmpdir(), 'onnx-errors-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const floats = (name: string, dims: number[], values?: number[]): OnnxTensorProto => ({
  name,
  dims,
  dataType: DATA_TYPES.FLOAT,
  rawData: new Uint8Array(Float32Array.from(values ?? Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => ((i * 7) % 5) / 10 - 0.2)).buffer),
});

/** x [N, 2, 5, 5] → Conv (w: 3×2×3×3, b) → Relu → y: a small valid model to break. */
function model(o: { opset?: number; nodes?: OnnxNodeProto[]; initializer?: OnnxTensorProto[]; dims?: (number | string)[] } = {}): OnnxModelProto {
  return {
    irVersion: 8,
    producerName: 'test',
    opsetImport: [{ domain: '', version: o.opset ?? 13 }],
    graph: {
      name: 'tiny',
      node: o.nodes ?? [
        { name: 'conv', opType: 'Conv', input: ['x', 'w', 'b'], output: ['c'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
        { name: 'relu', opType: 'Relu', input: ['c'], output: ['y'] },
      ],
      initializer: o.initializer ?? [floats('w', [3, 2, 3, 3]), floats('b', [3])],
      input: [{ name: 'x', type: { tensorType: { elemType: DATA_TYPES.FLOAT, shape: { dim: (o.dims ?? ['batch', 2, 5, 5]).map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } }],
      output: [{ name: 'y' }],
    },
  };
}

const bytes = (m: OnnxModelProto) => encodeModelProto(m);

async function expectError(source: Parameters<typeof loadOnnxModel>[1], message: RegExp, options: OnnxModelOptions = {}, type: new (...a: never[]) => Error = FormatError): Promise<void> {
  const before = gpu.memory();
  const err = await loadOnnxModel(gpu, source, options).then(
    (m) => {
      m.dispose();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err, `must fail with ${message}`).toBeInstanceOf(type);
  expect(String(err)).toMatch(message);
  expect(gpu.memory().tensors, 'tensors left on the GPU').toBe(before.tensors);
  expect(gpu.memory().inUse, 'buffers left in use').toBe(before.inUse);
}

describe('a valid tiny model', () => {
  it('loads, runs a batch of any size and names its layers', async () => {
    const m = await loadOnnxModel(gpu, bytes(model()));
    expect(m.name).toBe('tiny');
    expect(m.layerNames).toEqual(['c', 'y']);
    expect(m.layer('conv').name).toBe('c'); // the node's name finds its output
    for (const n of [1, 3]) {
      const x = tensor(gpu, new Float32Array(n * 50).fill(0.5), [n, 2, 5, 5]);
      const y = await m.forward(x);
      expect(y.shape).toEqual([n, 3, 5, 5]);
      x.dispose();
      y.dispose();
    }
    m.dispose();
  });
});

describe('bad ONNX files: one clear FormatError, nothing left on the GPU', () => {
  it('truncated, corrupt, empty or not protobuf at all', async () => {
    const good = bytes(model());
    await expectError(good.subarray(0, good.length - 7), /is not a valid ONNX model \(protobuf decoding failed: .*\)|declares shape .* but holds/);
    await expectError(good.subarray(0, 40), /is not a valid ONNX model \(protobuf decoding failed/);
    await expectError(new Uint8Array(0), /is empty, not an ONNX model/);
    await expectError(new TextEncoder().encode('{"format": "graph-model"}'), /is not a valid ONNX model|not an ONNX model \(no graph\)/);
    const corrupt = good.slice();
    for (let i = 10; i < corrupt.length; i += 13) corrupt[i] ^= 0xa5;
    await expectError(corrupt, /ONNX|not valid|node|initialiser|opset|input/);
    // Deeply nested length-delimited fields (a stack bomb for a recursive decoder) or a group nesting bomb.
    const nested = new Uint8Array(200_000).map((_, i) => (i % 2 ? 0 : 0x0b)); // start-group tags, field 1
    await expectError(nested, /is not a valid ONNX model \(protobuf decoding failed/);
  });

  it('an op we lack, named with its node and the supported list; op names that are Object members', async () => {
    const m = model();
    m.graph!.node![1]!.opType = 'Selu';
    await expectError(bytes(m), new RegExp(`op 'Selu' of node 'relu' is not supported\\. .*Supported ops: ${SUPPORTED_ONNX_OPS.join(', ')}`));
    for (const op of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const bad = model();
      bad.graph!.node![1]!.opType = op;
      await expectError(bytes(bad), new RegExp(`op '${op}' of node 'relu' is not supported`));
    }
    const custom = model();
    custom.graph!.node![1]!.domain = 'com.microsoft';
    await expectError(bytes(custom), /op 'com\.microsoft\.Relu' of node 'relu' is not supported/);
  });

  it('an opset outside 9 to 21', async () => {
    await expectError(bytes(model({ opset: 8 })), /opset 8 is outside the supported range 9 to 21/);
    await expectError(bytes(model({ opset: 22 })), /opset 22 is outside the supported range 9 to 21/);
    const none = model();
    none.opsetImport = [{ domain: 'ai.onnx.ml', version: 3 }];
    await expectError(bytes(none), /imports no opset of the default ONNX domain/);
  });

  it('a missing initialiser, one that holds too few bytes, or NaN', async () => {
    await expectError(bytes(model({ initializer: [floats('w', [3, 2, 3, 3])] })), /node 'conv' \(Conv\) reads 'b', which is neither the input, an initialiser nor any node's output/);
    const short = floats('w', [3, 2, 3, 3]);
    short.rawData = short.rawData!.subarray(0, 100);
    await expectError(bytes(model({ initializer: [short, floats('b', [3])] })), /initialiser 'w' declares shape \[3, 2, 3, 3\] of float32 \(216 bytes\) but holds 100 bytes of data/);
    const nan = floats('b', [3], [0, NaN, 0]);
    await expectError(bytes(model({ initializer: [floats('w', [3, 2, 3, 3]), nan] })), /initialiser 'b' holds NaN at index 1/);
    const inf = floats('b', [3], [0, Infinity, 0]);
    await expectError(bytes(model({ initializer: [floats('w', [3, 2, 3, 3]), inf] })), /holds Infinity at index 1: weights must be finite/);
    const strings: OnnxTensorProto = { name: 'b', dims: [3], dataType: DATA_TYPES.STRING };
    await expectError(bytes(model({ initializer: [floats('w', [3, 2, 3, 3]), strings] })), /initialiser 'b' has data type string, which is not supported/);
  });

  it('external data: missing or truncated files, and paths that leave the model folder', async () => {
    const ext = (location: string, extra: { key: string; value: string }[] = []): OnnxTensorProto => ({
      name: 'w',
      dims: [3, 2, 3, 3],
      dataType: DATA_TYPES.FLOAT,
      dataLocation: 1,
      externalData: [{ key: 'location', value: location }, ...extra],
    });
    const folder = join(dir, 'ext');
    mkdirSync(folder);
    const weights = new Uint8Array(Float32Array.from({ length: 54 }, (_, i) => i / 100).buffer);
    writeFileSync(join(folder, 'model.onnx.data'), weights);
    const write = (name: string, t: OnnxTensorProto) => {
      writeFileSync(join(folder, name), bytes(model({ initializer: [t, floats('b', [3])] })));
      return join(folder, name);
    };
    // The valid case: data next to the model, read from the file.
    const ok = await loadOnnxModel(gpu, write('ok.onnx', ext('model.onnx.data')));
    expect(await ok.layer('c').params.get('weight')!.read()).toEqual(Float32Array.from({ length: 54 }, (_, i) => i / 100));
    ok.dispose();
    await expectError(write('missing.onnx', ext('nope.data')), /external data file .*nope\.data: no such file/);
    await expectError(write('short.onnx', ext('model.onnx.data', [{ key: 'offset', value: '100' }])), /external data 'model\.onnx\.data' holds 216 bytes, less than offset 100 \+ length 216: the file is truncated/);
    await expectError(write('up.onnx', ext('../../../etc/passwd')), /external data file \.\.\/\.\.\/\.\.\/etc\/passwd lies outside the model's folder/);
    await expectError(write('abs.onnx', ext('/dev/zero')), /external data file \/dev\/zero must be a path relative to the model's folder/);
    symlinkSync('/dev/zero', join(folder, 'zero.data'));
    await expectError(write('link.onnx', ext('zero.data')), /external data file zero\.data links to a file outside the model's folder/);
    mkdirSync(join(folder, 'sub'));
    await expectError(write('dir.onnx', ext('sub')), /sub is not a regular file \(a directory\)/);
    await expectError(write('len.onnx', ext('model.onnx.data', [{ key: 'length', value: '12' }])), /external data length 12 does not match the 216 bytes its shape needs/);
    // As bytes, external data needs a reader (then it is the caller's reader that is asked).
    const asBytes = readFileSync(join(folder, 'ok.onnx'));
    await expectError(asBytes, /keeps its data in the external file 'model\.onnx\.data', but the model was given as bytes without a way to read other files/);
    const viaReader = await loadOnnxModel(gpu, asBytes, { readFile: async (name) => readFileSync(join(folder, name)) });
    viaReader.dispose();
    await expectError(asBytes, /external data file 'model\.onnx\.data' is 216 bytes, more than the limit of 200/, { readFile: async () => new Uint8Array(216), limits: { maxModelBytes: 200 } });
  });

  it('shapes that do not fit, and declared sizes that would allocate gigabytes', async () => {
    await expectError(bytes(model({ dims: ['batch', 3, 5, 5] })), /the input has 3 channels; the weight \[3, 2, 3, 3\] with group 1 expects 2/);
    await expectError(bytes(model({ dims: ['batch', 2, 100000, 100000] })), /the input 'x' \[2, 100000, 100000\] has 20000000000 elements, more than the limit of \d+/);
    const huge: OnnxTensorProto = { name: 'w', dims: [100000, 100000, 3, 3], dataType: DATA_TYPES.FLOAT, rawData: new Uint8Array(16) };
    await expectError(bytes(model({ initializer: [huge, floats('b', [3])] })), /initialiser 'w' \[100000, 100000, 3, 3\] has 90000000000 elements, more than the limit/);
    const negative: OnnxTensorProto = { name: 'w', dims: [3, -2, 3, 3], dataType: DATA_TYPES.FLOAT, rawData: new Uint8Array(16) };
    await expectError(bytes(model({ initializer: [negative, floats('b', [3])] })), /initialiser 'w' has an invalid shape \[3, -2, 3, 3\]/);
    // A Resize that would make a gigantic map, an Expand of a constant to billions of values.
    const resize = model({
      nodes: [{ name: 'up', opType: 'Resize', input: ['x', '', 's'], output: ['y'], attribute: [{ name: 'mode', type: 3, s: new TextEncoder().encode('nearest') }] }],
      initializer: [floats('s', [4], [1, 1, 50000, 50000])],
    });
    await expectError(bytes(resize), /the output size 250000×250000 is not valid/);
    const expand = model({
      nodes: [
        { name: 'big', opType: 'Expand', input: ['one', 'shape'], output: ['e'] },
        { name: 'add', opType: 'Add', input: ['x', 'e'], output: ['y'] },
      ],
      initializer: [floats('one', [1], [1]), { name: 'shape', dims: [4], dataType: DATA_TYPES.INT64, int64Data: [1, 2, 60000, 60000] }],
    });
    await expectError(bytes(expand), /the expanded shape \[1, 2, 60000, 60000\] exceeds the limit/);
    // Dimensions other than the batch left open need { inputShape }: an ArgumentError saying so.
    await expectError(bytes(model({ dims: ['batch', 2, 'h', 'w'] })), /has open dimensions \[2, \?, \?\] besides the batch; pass \{ inputShape \}/, {}, ArgumentError);
    const opened = await loadOnnxModel(gpu, bytes(model({ dims: ['batch', 2, 'h', 'w'] })), { inputShape: [2, 7, 6] });
    expect(opened.layer('y').outputShape).toEqual([3, 7, 6]);
    opened.dispose();
    // Two inputs, a cycle, a node with no output.
    const two = model();
    two.graph!.input!.push({ name: 'z', type: { tensorType: { elemType: DATA_TYPES.FLOAT } } });
    await expectError(bytes(two), /the model has 2 inputs \(x, z\); models with exactly one input are supported/);
    const cycle = model({
      nodes: [
        { name: 'a', opType: 'Relu', input: ['b_out'], output: ['a_out'] },
        { name: 'b', opType: 'Relu', input: ['a_out'], output: ['b_out'] },
        { name: 'c', opType: 'Add', input: ['x', 'a_out'], output: ['y'] },
      ],
      initializer: [],
    });
    await expectError(bytes(cycle), /the graph has a cycle through node '(a|b)'/);
  });
});
