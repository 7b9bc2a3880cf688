/**
 * Imported TF.js graph models against TF.js itself (tfjs-converter's GraphModel on the CPU
 * backend) running the very same model.json: outputs and input gradients on real photographs,
 * plus a small synthetic graph for the ops the three pretrained models do not use, and the error
 * cases (unsupported op, truncated or corrupt weights).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CENTERNET_OUTPUTS, centernetDetect, decodeCenterNet, type CenterNetDetection } from '../src/nets/centernet.js';
import { loadTfjsGraphModel, SUPPORTED_TFJS_OPS, type TfjsGraphModel, type TfjsModelJson, type TfjsNode } from '../src/nets/tfjs-graph.js';
import { Tape } from '../src/autodiff/tape.js';
import { randomNormal } from '../src/kernels/random.js';
import { resize as resizeKernel, resizeBackward } from '../src/kernels/resize.js';
import { FormatError } from '../src/runtime/errors.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { RULES, disposeRun, gradientRun, type RuleSet } from '../src/saliency/core.js';
import * as saliency from '../src/saliency/index.js';
import { imageToTensorData, readImage } from '../src/saliency/image.js';
import type { RgbaImage } from '../src/saliency/colormaps.js';
import { gradCheck } from './gradcheck.js';
import { getGpu } from './helpers.js';

const MODELS = 'node_modules/@vladmandic/human/models';

function crop(img: RgbaImage, x: number, y: number, w: number, h: number): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let r = 0; r < h; r++) data.set(img.data.subarray(((y + r) * img.width + x) * 4, ((y + r) * img.width + x + w) * 4), r * w * 4);
  return { width: w, height: h, data };
}

/** The same model.json and weights in TF.js. */
async function tfGraph(json: TfjsModelJson, weights: Uint8Array): Promise<GraphModel> {
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology as never,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights) as never,
      weightData,
      format: json.format,
      signature: json.signature,
    }),
  );
}

/**
 * The same graph with every fused op split into its parts (conv, bias add, activation): TF.js's
 * fused ops compute filter gradients too, which makes its input gradient very slow on the CPU.
 */
function unfused(json: TfjsModelJson): TfjsModelJson {
  const nodes: TfjsNode[] = [];
  const base: Record<string, string> = { _FusedConv2D: 'Conv2D', FusedDepthwiseConv2dNative: 'DepthwiseConv2dNative', _FusedMatMul: 'MatMul' };
  for (const n of (json.modelTopology as { node: TfjsNode[] }).node) {
    const op = base[n.op];
    if (!op) {
      nodes.push(n);
      continue;
    }
    const fused = (n.attr!.fused_ops!.list!.s ?? []).map((v) => atob(v));
    const { fused_ops: _f, num_args: _n, epsilon: _e, leakyrelu_alpha: _l, ...attr } = n.attr!;
    const [x, w, b] = n.input!;
    nodes.push({ name: `${n.name}/_op`, op, input: [x!, w!], attr });
    expect(fused[0]).toBe('BiasAdd');
    nodes.push({ name: `${n.name}/_bias`, op: 'BiasAdd', input: [`${n.name}/_op`, b!], attr: { T: attr.T! } });
    nodes.push({ name: n.name, op: fused[1] ?? 'Identity', input: [`${n.name}/_bias`], attr: { T: attr.T! } });
  }
  return { ...json, modelTopology: { ...json.modelTopology, node: nodes } };
}

function readModel(name: string): { json: TfjsModelJson; weights: Uint8Array } {
  const json = JSON.parse(readFileSync(`${MODELS}/${name}.json`, 'utf8')) as TfjsModelJson;
  const parts = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(`${MODELS}/${p}`)));
  return { json, weights: new Uint8Array(Buffer.concat(parts)) };
}

/** NCHW data → an NHWC TF.js tensor. */
function nhwc(data: Float32Array, [n, c, h, w]: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(data, [n!, c!, h!, w!]).transpose([0, 2, 3, 1]) as tf.Tensor4D);
}

/** TF.js NHWC (or flat) result as NCHW data. */
async function nchwData(t: tf.Tensor): Promise<Float32Array> {
  const v = t.rank === 4 ? tf.tidy(() => t.transpose([0, 3, 1, 2])) : t;
  const d = (await v.data()) as Float32Array;
  if (v !== t) v.dispose();
  return d;
}

function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
    if (Number.isNaN(actual[i]!)) return Infinity;
  }
  return err / Math.max(scale, 1e-12);
}

/** TF.js's gradient of Σ_n out[n, c] (the node `node`) with respect to the input, as NCHW. */
async function tfInputGradient(model: GraphModel, inputName: string, node: string, x: tf.Tensor4D, c: number): Promise<Float32Array> {
  const g = tf.grad((xx: tf.Tensor) => {
    const out = model.execute({ [inputName]: xx }, node) as tf.Tensor;
    return out.slice([0, c], [-1, 1]).sum();
  })(x);
  const d = await nchwData(g);
  g.dispose();
  return d;
}

let gpu: Gpu;
const astronaut = () => readImage('assets/astronaut.png');
// Eileen Collins' face, 128×128.
const face = () => crop(astronaut(), 161, 51, 128, 128);

beforeAll(async () => {
  gpu = await getGpu();
  await tf.setBackend('cpu');
});

describe('TF.js graph models against TF.js', () => {
  it('antispoof: sigmoid output, logits and the input gradient match on a real face', async () => {
    const { json, weights } = readModel('antispoof');
    const before = gpu.memory();
    const t0 = performance.now();
    const model = await loadTfjsGraphModel(gpu, `${MODELS}/antispoof.json`);
    const loadMs = performance.now() - t0;
    expect(model.inputShape).toEqual([3, 128, 128]);
    expect(model.usedOps).toEqual(['Identity', 'MaxPool', 'Relu', 'Reshape', 'Sigmoid', '_FusedConv2D', '_FusedMatMul']);
    const ref = await tfGraph(json, weights);
    // The face and a mirrored copy: a batch of two.
    const one = imageToTensorData(face());
    const data = new Float32Array(2 * one.length);
    data.set(one);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) data[one.length + (c * 128 + y) * 128 + x] = one[(c * 128 + y) * 128 + 127 - x]!;
    const shape = [2, 3, 128, 128];
    const x = tensor(gpu, data, shape);
    const xt = nhwc(data, shape);
    const t1 = performance.now();
    const y = await model.forward(x);
    const ours = await y.read();
    const fwdMs = performance.now() - t1;
    const theirs = await nchwData(ref.execute(xt) as tf.Tensor);
    expect(y.shape).toEqual([2, 1]);
    expect(maxRelError(ours, theirs)).toBeLessThan(1e-3);
    const logitsNode = 'StatefulPartitionedCall/sequential/dense_1/BiasAdd';
    expect(model.logitsName).toBe(logitsNode);
    const z = await model.forward(x, { logits: true });
    expect(maxRelError(await z.read(), await nchwData(ref.execute(xt, logitsNode) as tf.Tensor))).toBeLessThan(1e-3);
    // Input gradient of the (only) class, on the logit.
    const t2 = performance.now();
    const g = await saliency.vanilla(model, x, { target: 0 });
    const gradMs = performance.now() - t2;
    const split = await tfGraph(unfused(json), weights);
    const gRef = await tfInputGradient(split, 'conv2d_input', logitsNode, xt, 0);
    split.dispose();
    expect(maxRelError(await g.read(), gRef)).toBeLessThan(1e-3);
    console.log(`antispoof: load ${loadMs.toFixed(0)} ms, forward ${fwdMs.toFixed(0)} ms, gradient ${gradMs.toFixed(0)} ms; outputs ${[...ours].map((v) => v.toFixed(4))}`);
    for (const t of [x, y, z, g]) t.dispose();
    xt.dispose();
    ref.dispose();
    model.dispose();
    expect(gpu.memory().inUse).toBe(before.inUse);
    expect(gpu.memory().tensors).toBe(before.tensors);
  });

  it('emotion: softmax output and the input gradient of the top class match on a real face', async () => {
    const { json, weights } = readModel('emotion');
    const model = await loadTfjsGraphModel(gpu, { modelJson: json, weights }, { classNames: ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] });
    expect(model.inputShape).toEqual([1, 64, 64]);
    expect(model.name).toBe('tfjs-graph');
    const ref = await tfGraph(json, weights);
    // Grey face in [-1, 1], as the model was trained.
    const grey = imageToTensorData(face(), { channels: 1, width: 64, height: 64 }).map((v) => (v - 0.5) * 2);
    const shape = [1, 1, 64, 64];
    const x = tensor(gpu, grey, shape);
    const xt = nhwc(grey, shape);
    const t1 = performance.now();
    const y = await model.forward(x);
    const probs = await y.read();
    const fwdMs = performance.now() - t1;
    expect(maxRelError(probs, await nchwData(ref.execute(xt) as tf.Tensor))).toBeLessThan(1e-3);
    const top = probs.indexOf(Math.max(...probs));
    const logitsNode = 'StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean';
    expect(model.logitsName).toBe(logitsNode);
    const t2 = performance.now();
    const g = await saliency.vanilla(model, x, { target: 'top' });
    const gradMs = performance.now() - t2;
    const split = await tfGraph(unfused(json), weights);
    const gRef = await tfInputGradient(split, 'input_1', logitsNode, xt, top);
    split.dispose();
    expect(maxRelError(await g.read(), gRef)).toBeLessThan(1e-3);
    console.log(`emotion: forward ${fwdMs.toFixed(0)} ms, gradient ${gradMs.toFixed(0)} ms; top ${model.classNames![top]} (${probs[top]!.toFixed(3)})`);
    for (const t of [x, y, g]) t.dispose();
    xt.dispose();
    ref.dispose();
    model.dispose();
  });
});

// -----------------------------------------------------------------------------------------------
// A small synthetic graph with every op the importer supports that the pretrained models lack,
// odd sizes (asymmetric SAME padding), and uint8 / uint16 / float16 quantised weights.

const b64 = (s: string) => btoa(s);
const A = {
  s: (v: string) => ({ s: b64(v) }),
  ints: (v: number[]) => ({ list: { i: v.map(String) } }),
  strs: (v: string[]) => ({ list: { s: v.map(b64) } }),
  b: (v: boolean) => ({ b: v }),
  f: (v: number) => ({ f: v }),
  i: (v: number) => ({ i: String(v) }),
  T: { type: 'DT_FLOAT' },
};
const NHWC = A.s('NHWC');

interface Const {
  shape: number[];
  values: Float32Array | Int32Array;
  quant?: 'uint8' | 'uint16' | 'float16';
}

/** Builds model.json and weight bytes: nodes plus constants (quantised as asked). */
function buildGraph(nodes: TfjsNode[], consts: Record<string, Const>, input: number[]): { json: TfjsModelJson; weights: Uint8Array } {
  const all: TfjsNode[] = [{ name: 'x', op: 'Placeholder', attr: { dtype: A.T, shape: { shape: { dim: input.map((d) => ({ size: String(d) })) } } } }];
  const specs: TfjsModelJson['weightsManifest'][0]['weights'] = [];
  const chunks: Uint8Array[] = [];
  for (const [name, c] of Object.entries(consts)) {
    const int = c.values instanceof Int32Array;
    all.push({ name, op: 'Const', attr: { dtype: { type: int ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: int ? 'DT_INT32' : 'DT_FLOAT', tensorShape: { dim: c.shape.map((d) => ({ size: String(d) })) } } } } });
    if (int || !c.quant) {
      specs.push({ name, shape: c.shape, dtype: int ? 'int32' : 'float32' });
      chunks.push(new Uint8Array(c.values.buffer.slice(0)));
    } else if (c.quant === 'float16') {
      specs.push({ name, shape: c.shape, dtype: 'float32', quantization: { dtype: 'float16' } });
      chunks.push(new Uint8Array(Uint16Array.from(c.values, toHalf).buffer));
    } else {
      const v = c.values as Float32Array;
      const min = Math.min(...v);
      const levels = c.quant === 'uint8' ? 255 : 65535;
      const scale = (Math.max(...v) - min) / levels;
      const q = Array.from(v, (x) => Math.round((x - min) / scale));
      specs.push({ name, shape: c.shape, dtype: 'float32', quantization: { dtype: c.quant, min, scale } });
      chunks.push(new Uint8Array((c.quant === 'uint8' ? Uint8Array.from(q) : Uint16Array.from(q)).buffer));
    }
  }
  all.push(...nodes);
  const weights = new Uint8Array(Buffer.concat(chunks));
  return {
    json: { format: 'graph-model', modelTopology: { node: all, library: {}, versions: {} }, weightsManifest: [{ paths: ['synthetic.bin'], weights: specs }] },
    weights,
  };
}

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  const m = (u >>> 13) & 0x3ff;
  if (e <= 0) return sign;
  return sign | (e << 10) | m;
}

function rand(shape: number[], seed: number, lo = -0.5, hi = 0.5): Float32Array {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  });
}

const node = (name: string, op: string, input: string[], attr: TfjsNode['attr'] = {}): TfjsNode => ({ name, op, input, attr: { T: A.T, ...attr } });
const conv = (strides: number[], padding: string) => ({ strides: A.ints(strides), padding: A.s(padding), data_format: NHWC, dilations: A.ints([1, 1, 1, 1]) });
const fused = (ops: string[]) => ({ fused_ops: A.strs(ops), num_args: A.i(1), epsilon: A.f(0) });

function syntheticGraph() {
  const i32 = (v: number[]) => ({ shape: [v.length], values: Int32Array.from(v) });
  const scalar = (v: number) => ({ shape: [], values: Float32Array.from([v]) });
  const consts: Record<string, Const> = {
    w1: { shape: [3, 3, 3, 8], values: rand([3, 3, 3, 8], 1), quant: 'uint8' },
    b1: { shape: [8], values: rand([8], 2, 0, 0.2) },
    three: scalar(3),
    sixth: scalar(1 / 6),
    wdw: { shape: [3, 3, 8, 2], values: rand([3, 3, 8, 2], 3), quant: 'float16' },
    bdw: { shape: [16], values: rand([16], 4, 0, 0.2) },
    axes12: i32([1, 2]),
    ws1: { shape: [1, 1, 16, 4], values: rand([1, 1, 16, 4], 5) },
    bs1: { shape: [4], values: rand([4], 6, 0, 0.1) },
    ws2: { shape: [1, 1, 4, 16], values: rand([1, 1, 4, 16], 7) },
    gamma: { shape: [16], values: rand([16], 8, 0.5, 1.5) },
    beta: { shape: [16], values: rand([16], 9) },
    mu: { shape: [16], values: rand([16], 10) },
    var: { shape: [16], values: rand([16], 11, 0.5, 2) },
    size10: i32([10, 10]),
    size7: i32([7, 8]),
    axis3: { shape: [], values: Int32Array.from([3]) },
    pads: { shape: [4, 2], values: Int32Array.from([0, 0, 1, 0, 0, 1, 0, 0]) },
    dw2: { shape: [2, 2, 32, 1], values: rand([2, 2, 32, 1], 12) },
    c32: { shape: [32], values: rand([32], 13) },
    two: scalar(2),
    flatShape: i32([-1, 128]),
    wf: { shape: [128, 10], values: rand([128, 10], 14, -0.3, 0.3), quant: 'uint16' },
    bf: { shape: [10], values: rand([10], 15) },
    wt: { shape: [6, 10], values: rand([6, 10], 16) },
    b2: { shape: [6], values: rand([6], 17) },
    axis1: i32([1]),
    axisC: i32([-1]),
    dimExp: { shape: [], values: Int32Array.from([1]) },
    axisLast: { shape: [], values: Int32Array.from([-1]) },
  };
  const nodes: TfjsNode[] = [
    node('c1', '_FusedConv2D', ['x', 'w1', 'b1'], { ...conv([1, 2, 2, 1], 'SAME'), ...fused(['BiasAdd', 'Relu']) }),
    node('hs/add', 'AddV2', ['c1', 'three']),
    node('hs/relu6', 'Relu6', ['hs/add']),
    node('hs/mul', 'Mul', ['three', 'hs/relu6']), // constant first
    node('hs/mul2', 'Mul', ['hs/mul', 'c1']),
    node('hs', 'Mul', ['hs/mul2', 'sixth']),
    node('dw', 'FusedDepthwiseConv2dNative', ['hs', 'wdw', 'bdw'], { ...conv([1, 1, 1, 1], 'SAME'), fused_ops: A.strs(['BiasAdd', 'Relu6']), num_args: A.i(1) }),
    node('se/mean', 'Mean', ['dw', 'axes12'], { keep_dims: A.b(true), Tidx: { type: 'DT_INT32' } }),
    node('se/fc1', '_FusedConv2D', ['se/mean', 'ws1', 'bs1'], { ...conv([1, 1, 1, 1], 'SAME'), ...fused(['BiasAdd', 'Relu']) }),
    node('se/fc2', 'Conv2D', ['se/fc1', 'ws2'], conv([1, 1, 1, 1], 'VALID')),
    node('se/gate', 'Sigmoid', ['se/fc2']),
    node('se', 'Mul', ['dw', 'se/gate']),
    node('bn', 'FusedBatchNormV3', ['se', 'gamma', 'beta', 'mu', 'var'], { epsilon: A.f(0.001), data_format: NHWC, is_training: A.b(false), U: A.T }),
    node('lrelu', 'LeakyRelu', ['bn'], { alpha: A.f(0.1) }),
    node('up', 'ResizeBilinear', ['lrelu', 'size10'], { align_corners: A.b(false), half_pixel_centers: A.b(false) }),
    node('up2', 'ResizeBilinear', ['lrelu', 'size10'], { align_corners: A.b(true), half_pixel_centers: A.b(false) }),
    // Side outputs, compared forward only: TF.js's CPU resize gradients ignore half_pixel_centers,
    // and its nearest-neighbour gradient reads dy at the input's batch stride (wrong for N > 1).
    node('upHP', 'ResizeBilinear', ['lrelu', 'size10'], { align_corners: A.b(false), half_pixel_centers: A.b(true) }),
    node('upNN', 'ResizeNearestNeighbor', ['lrelu', 'size7'], { align_corners: A.b(false), half_pixel_centers: A.b(true) }),
    node('upNL', 'ResizeNearestNeighbor', ['lrelu', 'size7'], { align_corners: A.b(false), half_pixel_centers: A.b(false) }),
    node('upNA', 'ResizeNearestNeighbor', ['lrelu', 'size7'], { align_corners: A.b(true), half_pixel_centers: A.b(false) }),
    node('cat', 'ConcatV2', ['up', 'up2', 'axis3'], { N: A.i(2), Tidx: { type: 'DT_INT32' } }),
    node('pad', 'Pad', ['cat', 'pads'], { Tpaddings: { type: 'DT_INT32' } }),
    node('avg', 'AvgPool', ['pad'], { ksize: A.ints([1, 3, 3, 1]), strides: A.ints([1, 2, 2, 1]), padding: A.s('VALID'), data_format: NHWC }),
    // Forward only: TF.js's CPU AvgPool gradient divides by the whole window even where SAME padding cut it.
    node('avgS', 'AvgPool', ['pad'], { ksize: A.ints([1, 3, 3, 1]), strides: A.ints([1, 2, 2, 1]), padding: A.s('SAME'), data_format: NHWC }),
    node('mx', 'MaxPool', ['avg'], { ksize: A.ints([1, 2, 2, 1]), strides: A.ints([1, 2, 2, 1]), padding: A.s('SAME'), data_format: NHWC }),
    node('dwv', 'DepthwiseConv2dNative', ['mx', 'dw2'], conv([1, 1, 1, 1], 'VALID')),
    node('th', 'Tanh', ['dwv']),
    node('sub', 'Sub', ['th', 'c32']),
    node('div', 'RealDiv', ['sub', 'two']),
    node('flat', 'Reshape', ['div', 'flatShape'], { Tshape: { type: 'DT_INT32' } }),
    node('fc', '_FusedMatMul', ['flat', 'wf', 'bf'], { transpose_a: A.b(false), transpose_b: A.b(false), ...fused(['BiasAdd']) }),
    node('fc2', 'MatMul', ['fc', 'wt'], { transpose_a: A.b(false), transpose_b: A.b(true) }),
    node('logits', 'BiasAdd', ['fc2', 'b2'], { data_format: NHWC }),
    node('probs', 'Softmax', ['logits']),
    node('out', 'Identity', ['probs']),
    // Side outputs: reductions whose remaining axes need reordering, squeeze, expand, sum of many.
    node('sq', 'Squeeze', ['se/mean'], { squeeze_dims: A.ints([1, 2]) }),
    node('sumH', 'Sum', ['dw', 'axis1'], { keep_dims: A.b(false), Tidx: { type: 'DT_INT32' } }),
    node('maxC', 'Max', ['avg', 'axisC'], { keep_dims: A.b(false), Tidx: { type: 'DT_INT32' } }),
    node('exp', 'ExpandDims', ['maxC', 'axisLast'], { Tdim: { type: 'DT_INT32' } }),
    node('addn', 'AddN', ['exp', 'exp', 'exp'], { N: A.i(3) }),
    node('bcast', 'AddV2', ['addn', 'avg']),
    node('th2', 'Relu', ['bcast']),
  ];
  return buildGraph(nodes, consts, [-1, 9, 9, 3]);
}

describe('a synthetic graph with the remaining ops', () => {
  it('forward, several outputs and input gradients match TF.js (with quantised weights)', async () => {
    const { json, weights } = syntheticGraph();
    const outputs = ['out', 'sq', 'sumH', 'maxC', 'th2', 'pad', 'upHP', 'upNN', 'upNL', 'upNA', 'avgS'];
    const before = gpu.memory();
    const model = await loadTfjsGraphModel(gpu, { modelJson: json, weights }, { outputs, name: 'synthetic' });
    expect(model.inputShape).toEqual([3, 9, 9]);
    expect(model.layer('pad').outputShape).toEqual([32, 11, 11]);
    expect(model.layer('sumH').outputShape).toEqual([5, 16]);
    expect(model.layer('flat').type).toBe('flatten');
    expect(model.layer('c1').type).toBe('conv2d');
    const ref = await loadGraphModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology as never, weightSpecs: json.weightsManifest[0]!.weights as never, weightData: weights.slice().buffer }),
    );
    const shape = [2, 3, 9, 9];
    const data = rand(shape, 99, 0, 1);
    const x = tensor(gpu, data, shape);
    const xt = nhwc(data, shape);
    const ours = await model.forwardAll(x);
    const theirs = ref.execute(xt, outputs) as tf.Tensor[];
    for (const [k, o] of outputs.entries()) {
      expect(ours[o]!.shape, o).toEqual(theirs[k]!.rank === 4 ? [theirs[k]!.shape[0], theirs[k]!.shape[3], theirs[k]!.shape[1], theirs[k]!.shape[2]] : theirs[k]!.shape);
      expect(maxRelError(await ours[o]!.read(), await nchwData(theirs[k]!)), o).toBeLessThan(1e-3);
    }
    // Input gradients of a random projection of each output (and the top logit). GRAD_NODES=a,b
    // checks those nodes instead and logs each error too; the assertion runs either way.
    for (const o of (process.env.GRAD_NODES ?? 'logits,sq,sumH,maxC,th2,pad').split(',')) {
      const tape = new Tape(gpu);
      tape.watch(x);
      const { [o]: y } = await tape.run(() => model.forwardAll(x, { outputs: [o] }));
      const seedTf = tf.tensor(rand(y!.shape as number[], 7, -1, 1), y!.rank === 4 ? [y!.shape[0]!, y!.shape[2]!, y!.shape[3]!, y!.shape[1]!] : [...y!.shape]);
      const seedData = await nchwData(seedTf);
      const seed = tensor(gpu, seedData, y!.shape);
      const g = await tape.backward(y!, { seed });
      seed.dispose();
      const gTf = tf.grad((xx: tf.Tensor) => (ref.execute({ x: xx }, o) as tf.Tensor).mul(seedTf).sum())(xt);
      const err = maxRelError(await g.of(x).read(), await nchwData(gTf));
      if (process.env.GRAD_NODES) console.log(`gradient through ${o}: max relative error ${err}`);
      expect(err, `gradient through ${o}`).toBeLessThan(1e-3);
      g.dispose();
      y!.dispose();
      tape.dispose();
      seedTf.dispose();
      gTf.dispose();
    }
    for (const t of Object.values(ours)) t.dispose();
    tf.dispose([xt, ...theirs]);
    x.dispose();
    ref.dispose();
    model.dispose();
    expect(gpu.memory().inUse).toBe(before.inUse);
  });
});

describe('Pad against finite differences', () => {
  // Placeholder → Pad, the smallest graph: the op's backward rule (slice the padded gradient back
  // out) against central differences of its forward, with every axis but the batch padded
  // asymmetrically, so a begin taken from the wrong side or the wrong (NHWC vs NCHW) axis shows.
  const padGraph = (input: number[], pads: number[][]) =>
    buildGraph([node('pad', 'Pad', ['x', 'pads'], { Tpaddings: { type: 'DT_INT32' } })], { pads: { shape: [pads.length, 2], values: Int32Array.from(pads.flat()) } }, input);

  it('NHWC input: paddings on H, W and C', async () => {
    // TF paddings [[0, 0], [1, 2], [2, 0], [0, 1]] (N, H, W, C) on x [2, 2, 3, 2] (NCHW, 24 values).
    const { json, weights } = padGraph([-1, 2, 3, 2], [[0, 0], [1, 2], [2, 0], [0, 1]]);
    const model = await loadTfjsGraphModel(gpu, { modelJson: json, weights }, { outputs: ['pad'] });
    expect(model.inputShape).toEqual([2, 2, 3]);
    expect(model.layer('pad').outputShape).toEqual([3, 5, 5]);
    const shape = [2, 2, 2, 3];
    const data = rand(shape, 31, -1, 1);
    // The forward is x placed in zeros at offset (c 0, h 1, w 2): the rule's adjoint must read there.
    const x = tensor(gpu, data, shape);
    const y = await model.forward(x);
    expect(y.shape).toEqual([2, 3, 5, 5]);
    const yv = await y.read();
    for (let n = 0; n < 2; n++)
      for (let c = 0; c < 3; c++)
        for (let h = 0; h < 5; h++)
          for (let w = 0; w < 5; w++) {
            const inside = c < 2 && h >= 1 && h < 3 && w >= 2;
            expect(yv[((n * 3 + c) * 5 + h) * 5 + w]).toBe(inside ? data[((n * 2 + c) * 2 + h - 1) * 3 + w - 2]! : 0);
          }
    for (const t of [x, y]) t.dispose();
    await gradCheck(gpu, ([t]) => model.forward(t!), [{ data, shape }]);
    model.dispose();
  });

  it('rank-3 input: paddings on both non-batch axes', async () => {
    const { json, weights } = padGraph([-1, 3, 4], [[0, 0], [2, 1], [1, 3]]);
    const model = await loadTfjsGraphModel(gpu, { modelJson: json, weights }, { outputs: ['pad'] });
    expect(model.layer('pad').outputShape).toEqual([6, 8]);
    await gradCheck(gpu, ([t]) => model.forward(t!), [{ data: rand([2, 3, 4], 32, -1, 1), shape: [2, 3, 4] }]);
    model.dispose();
  });
});

describe('saliency methods on imported graphs', () => {
  it('guided backprop and DeconvNet change the ReLU fused into _FusedMatMul (antispoof)', async () => {
    const model = await loadTfjsGraphModel(gpu, `${MODELS}/antispoof.json`);
    const x = tensor(gpu, imageToTensorData(face()), [1, 3, 128, 128]);
    const flat = 'StatefulPartitionedCall/sequential/flatten/Reshape';
    const fc = 'StatefulPartitionedCall/sequential/activation_3/Relu'; // _FusedMatMul with a fused Relu
    expect(model.layer(fc).op).toBe('_FusedMatMul');
    const w1 = await model.layer(fc).params.get('weight')!.read(); // [128, 3136]
    const w2 = await model.layer('StatefulPartitionedCall/sequential/dense_1/BiasAdd').params.get('weight')!.read(); // [1, 128]
    // Between the logit and the flatten there is only the fused ReLU: its rule decides the gradient there.
    const atFlatten = async (rules: RuleSet) => {
      const run = await gradientRun('test', model, x, { target: 0, rules: RULES[rules], hooks: [flat, fc] });
      try {
        const y = await run.tape.hook(fc).activation!.read();
        return { g: await run.tape.hook(flat).gradient!.read(), y };
      } finally {
        disposeRun(run);
      }
    };
    const expected = (y: Float32Array, rule: (dy: number, y: number) => number) => {
      const dz = Array.from(w2, (dy, j) => rule(dy, y[j]!));
      return Float32Array.from({ length: 3136 }, (_, i) => dz.reduce((a, d, j) => a + d * w1[j * 3136 + i]!, 0));
    };
    const plain = await atFlatten('ordinary');
    const guided = await atFlatten('guided');
    const deconv = await atFlatten('deconv');
    expect(maxRelError(plain.g, expected(plain.y, (dy, y) => (y > 0 ? dy : 0)))).toBeLessThan(1e-4);
    expect(maxRelError(guided.g, expected(plain.y, (dy, y) => (y > 0 && dy > 0 ? dy : 0)))).toBeLessThan(1e-4);
    expect(maxRelError(deconv.g, expected(plain.y, (dy) => Math.max(dy, 0)))).toBeLessThan(1e-4);
    expect(maxRelError(guided.g, plain.g)).toBeGreaterThan(0.05);
    // And at the input.
    const v = await saliency.vanilla(model, x, { target: 0 });
    const gb = await saliency.guidedBackprop(model, x, { target: 0 });
    expect(maxRelError(await gb.read(), await v.read())).toBeGreaterThan(0.05);
    for (const t of [x, v, gb]) t.dispose();
    model.dispose();
  });

  it('Grad-CAM, SmoothGrad, DeconvNet and neuron targets on emotion (graph node names) match TF.js', async () => {
    const { json, weights } = readModel('emotion');
    const before = gpu.memory();
    const model = await loadTfjsGraphModel(gpu, `${MODELS}/emotion.json`);
    const grey = imageToTensorData(face(), { channels: 1, width: 64, height: 64 }).map((v) => (v - 0.5) * 2);
    const shape = [1, 1, 64, 64];
    const x = tensor(gpu, grey, shape);
    const xt = nhwc(grey, shape);
    const P = 'StatefulPartitionedCall/model_1/';
    const logitsNode = `${P}global_average_pooling2d_1/Mean`;
    const lastConv = `${P}conv2d_5/BiasAdd`;
    const block3 = `${P}block3_sepconv2_act/Relu`;
    expect(saliency.defaultCamLayer('test', model)).toBe(lastConv);
    // TF.js's side: the graph with its fused ops split (fast input gradients, and every ReLU a Relu kernel).
    const split = await tfGraph(unfused(json), weights);
    const logits = (await (split.execute({ input_1: xt }, logitsNode) as tf.Tensor).data()) as Float32Array;
    const top = logits.indexOf(Math.max(...logits));

    // Grad-CAM in TF.js: A = the layer's activation, dA = ∂ logit_top / ∂A (the graph run from A on,
    // with the nodes that reach the logits around the layer fed their values), α_k = mean over
    // (h, w) of dA^k, map = ReLU(Σ_k α_k A^k), [1, h, w, 1].
    const tfGradCam = (layer: string, side: string[] = []) =>
      tf.tidy(() => {
        const [A, ...S] = [split.execute({ input_1: xt }, [layer, ...side])].flat() as tf.Tensor4D[]; // a lone output comes unwrapped
        const feeds = Object.fromEntries(side.map((n, i) => [n, S[i]!]));
        const dA = tf.grad((a: tf.Tensor) => (split.execute({ ...feeds, [layer]: a }, logitsNode) as tf.Tensor).slice([0, top], [1, 1]).sum())(A!);
        return A!.mul(dA.mean([1, 2], true)).sum(3, true).relu() as tf.Tensor4D;
      });
    // The default layer (conv2d_5, whose GAP is the logits), upsampled bilinearly with half-pixel centres…
    const camRef = tfGradCam(lastConv);
    const camUp = tf.image.resizeBilinear(camRef, [64, 64], false, true);
    const cam = await saliency.gradCam(model, x, { target: 'top' });
    expect(cam.shape).toEqual([1, 1, 64, 64]);
    expect(maxRelError(await cam.read(), await nchwData(camUp))).toBeLessThan(1e-3);
    // …and an inner layer with a non-trivial path to the logits (depthwise, conv, max pool, add, conv, GAP), at its own resolution.
    const innerRef = tfGradCam(block3, [`${P}batch_normalization_2/FusedBatchNormV3`]); // the residual branch into add_2
    const inner = await saliency.gradCam(model, x, { target: 'top', layer: block3, upsample: 'none' });
    expect(inner.shape).toEqual([1, 1, innerRef.shape[1], innerRef.shape[2]]);
    const innerData = await inner.read();
    expect(innerData.filter((v) => v > 0).length).toBeGreaterThan(innerData.length / 10); // the ReLU leaves a real map
    expect(maxRelError(innerData, await nchwData(innerRef))).toBeLessThan(1e-3);

    // SmoothGrad (3 samples, σ = 0.15 of the range, seed 0): TF.js's gradients of the very noisy
    // copies, read back from our seeded stream at the offsets smoothGrad documents, averaged.
    const sg = await saliency.smoothGrad(model, x, { target: 'top', samples: 3 });
    const sigma = 0.15 * (Math.max(...grey) - Math.min(...grey));
    const noise = await randomNormal(gpu, [3, 1, 64, 64], { seed: 0, offset: 0, std: sigma });
    const noisy = Float32Array.from(await noise.read(), (v, j) => v + grey[j % grey.length]!);
    noise.dispose();
    const noisyTf = nhwc(noisy, [3, 1, 64, 64]);
    const perSample = await tfInputGradient(split, 'input_1', logitsNode, noisyTf, top);
    const sgRef = Float32Array.from(grey, (_, j) => (perSample[j]! + perSample[grey.length + j]! + perSample[2 * grey.length + j]!) / 3);
    expect(maxRelError(await sg.read(), sgRef)).toBeLessThan(1e-3);
    // The samples really differ (the mean is not just one gradient).
    expect(maxRelError(perSample.subarray(0, grey.length), sgRef)).toBeGreaterThan(0.01);

    // DeconvNet: every ReLU passes ReLU(dy) back, whatever its input; TF.js's Relu gradient swapped for that.
    const reluGrad = tf.getGradient('Relu');
    tf.registerGradient({ kernelName: 'Relu', gradFunc: (dy) => ({ x: () => tf.relu(dy as tf.Tensor) }) });
    let dcRef: Float32Array;
    try {
      dcRef = await tfInputGradient(split, 'input_1', logitsNode, xt, top);
    } finally {
      tf.registerGradient(reluGrad);
    }
    const dc = await saliency.deconvnet(model, x, { target: 'top' });
    expect(maxRelError(await dc.read(), dcRef)).toBeLessThan(1e-3);
    // The swapped rule took effect: far from the ordinary input gradient.
    expect(maxRelError(await tfInputGradient(split, 'input_1', logitsNode, xt, top), dcRef)).toBeGreaterThan(0.1);

    // A neuron target: feature map 5 of block3_sepconv2_act at its strongest activation a.
    // By default its gradient ∂a/∂x: TF.js's gradient of the activations × a one-hot at a (Captum's
    // NeuronGradient). With seed: 'activation', the projection: the one-hot scaled by a.
    const act = split.execute({ input_1: xt }, block3) as tf.Tensor4D; // [1, h, w, K]
    const [, h, w, K] = act.shape;
    const av = (await act.data()) as Float32Array;
    let best = 0;
    for (let p = 1; p < h * w; p++) if (av[p * K + 5]! > av[best * K + 5]!) best = p;
    expect(av[best * K + 5]).toBeGreaterThan(0);
    const oneHotData = new Float32Array(av.length);
    oneHotData[best * K + 5] = 1;
    const oneHotTf = tf.tensor4d(oneHotData, act.shape);
    const seedData = new Float32Array(av.length);
    seedData[best * K + 5] = av[best * K + 5]!;
    const seedTf = tf.tensor4d(seedData, act.shape);
    const gOne = tf.grad((xx: tf.Tensor) => (split.execute({ input_1: xx }, block3) as tf.Tensor).mul(oneHotTf).sum())(xt);
    const gNeuron = tf.grad((xx: tf.Tensor) => (split.execute({ input_1: xx }, block3) as tf.Tensor).mul(seedTf).sum())(xt);
    const neuronGrad = await saliency.vanilla(model, x, { target: { layer: block3, channel: 5 } });
    expect(maxRelError(await neuronGrad.read(), await nchwData(gOne))).toBeLessThan(1e-3);
    const neuron = await saliency.vanilla(model, x, { target: { layer: block3, channel: 5 }, seed: 'activation' });
    expect(maxRelError(await neuron.read(), await nchwData(gNeuron))).toBeLessThan(1e-3);

    for (const t of [cam, inner, sg, dc, neuron, neuronGrad]) t.dispose();
    tf.dispose([xt, camRef, camUp, innerRef, noisyTf, act, seedTf, gNeuron, oneHotTf, gOne]);
    split.dispose();
    await expect(saliency.gradCam(model, x, { target: 0, layer: 'nope' })).rejects.toThrow(/no layer 'nope'; layers: StatefulPartitionedCall\/model_1\/block1_conv1_act\/Relu/);
    x.dispose();
    model.dispose();
    expect(gpu.memory().inUse).toBe(before.inUse);
  });
});

describe('clear errors', () => {
  it('an unsupported op names the op and the node and lists the supported ops', async () => {
    const { json, weights } = readModel('antispoof');
    const before = gpu.memory();
    const bad = structuredClone(json);
    const nodes = (bad.modelTopology as { node: TfjsNode[] }).node;
    nodes.find((n) => n.name === 'StatefulPartitionedCall/sequential/activation_1/Relu')!.op = 'Elu';
    const err = await loadTfjsGraphModel(gpu, { modelJson: bad, weights }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(String(err)).toMatch(/op 'Elu' of node 'StatefulPartitionedCall\/sequential\/activation_1\/Relu' is not supported/);
    expect(String(err)).toContain(`Supported ops: ${SUPPORTED_TFJS_OPS.join(', ')}`);
    // A fused activation we lack (found after the weights are on the GPU: they are freed again).
    const bad2 = structuredClone(json);
    const conv = (bad2.modelTopology as { node: TfjsNode[] }).node.find((n) => n.name === 'StatefulPartitionedCall/sequential/conv2d_1/BiasAdd')!;
    conv.attr!.fused_ops = { list: { s: [btoa('BiasAdd'), btoa('Elu')] } };
    await expect(loadTfjsGraphModel(gpu, { modelJson: bad2, weights })).rejects.toThrow(/node 'StatefulPartitionedCall\/sequential\/conv2d_1\/BiasAdd' \(_FusedConv2D\): fused op 'Elu'/);
    // Post-processing ops: the error says which outputs can still be imported.
    await expect(loadTfjsGraphModel(gpu, `${MODELS}/centernet.json`)).rejects.toThrow(
      /op 'Equal' of node 'tower_0\/Equal' is not supported \(also: Cast in .*TopKV2 in 'tower_0\/TopKV2'.*load with \{ outputs: \['tower_0\/wh', 'tower_0\/keypoints'\] \}/,
    );
    await expect(loadTfjsGraphModel(gpu, { modelJson: json, weights }, { outputs: ['nope'] })).rejects.toThrow(/no node named 'nope'/);
    await expect(loadTfjsGraphModel(gpu, { modelJson: { format: 'layers-model', modelTopology: { class_name: 'Sequential' }, weightsManifest: [] }, weights })).rejects.toThrow(/layers model/);
    expect(gpu.memory().inUse).toBe(before.inUse);
    expect(gpu.memory().tensors).toBe(before.tensors);
  });

  it('truncated, missing or corrupt weight files get an error naming the file', async () => {
    const { json, weights } = readModel('antispoof');
    const before = gpu.memory();
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-graph-'));
    try {
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      writeFileSync(join(dir, 'antispoof.bin'), weights.subarray(0, weights.length - 1000));
      await expect(loadTfjsGraphModel(gpu, join(dir, 'model.json'))).rejects.toThrow(
        new RegExp(`weights file 'antispoof.bin' holds ${weights.length - 1000} bytes, but .*model.json lists ${weights.length} bytes of weights for it: the file is truncated`),
      );
      rmSync(join(dir, 'antispoof.bin'));
      await expect(loadTfjsGraphModel(gpu, join(dir, 'model.json'))).rejects.toThrow(/weights file .*antispoof.bin: no such file/);
      // A flipped float16 that decodes to NaN.
      const corrupt = weights.slice();
      corrupt.set([0xff, 0x7f], 1000);
      writeFileSync(join(dir, 'antispoof.bin'), corrupt);
      await expect(loadTfjsGraphModel(gpu, join(dir, 'model.json'))).rejects.toThrow(/antispoof.bin: weight 'unknown' holds NaN at index 500: the weights file is corrupt/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(loadTfjsGraphModel(gpu, { modelJson: json, weights: weights.subarray(1) })).rejects.toThrow(/weight data holds \d+ bytes, but model.json lists \d+ bytes of weights: it is truncated/);
    await expect(loadTfjsGraphModel(gpu, `${MODELS}/missing.json`)).rejects.toThrow(/model file .*missing.json: no such file/);
    expect(gpu.memory().inUse).toBe(before.inUse);
  });

  it("TF's legacy resize (half_pixel_centers = false): backward is the adjoint of forward", async () => {
    for (const mode of ['bilinear', 'nearest'] as const) {
      for (const [from, to] of [[[5, 7], [7, 3]], [[4, 4], [9, 6]]]) {
        const x = tensor(gpu, rand([2, 3, ...from!], 1), [2, 3, ...from!]);
        const dy = tensor(gpu, rand([2, 3, ...to!], 2), [2, 3, ...to!]);
        const y = await resizeKernel(x, to!, { mode, halfPixelCenters: false });
        const dx = await resizeBackward(dy, x.shape, { mode, halfPixelCenters: false });
        const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
        expect(dot(await y.read(), await dy.read())).toBeCloseTo(dot(await x.read(), await dx.read()), 4);
        // src = o·in/out: output 1 of 5 → 7 reads row 5/7 (bilinear) or row 0 (nearest).
        if (from![0] === 5) {
          const xv = await x.read();
          const yv = await y.read();
          const t = 5 / 7;
          const expect01 = mode === 'nearest' ? xv[0]! : (1 - t) * xv[0]! + t * xv[7]!; // column 0, rows 0 and 1
          expect(yv[3]).toBeCloseTo(expect01, 5);
        }
        for (const t of [x, dy, y, dx]) t.dispose();
      }
    }
  });
});

describe('CenterNet (512×512: heavy on a CPU adapter, one image)', () => {
  it('heat maps and decoded detections match TF.js on the cat', async () => {
    const { json, weights } = readModel('centernet');
    const before = gpu.memory();
    const model = await loadTfjsGraphModel(gpu, `${MODELS}/centernet.json`, { outputs: [...CENTERNET_OUTPUTS] });
    expect(model.inputShape).toEqual([3, 512, 512]);
    expect(model.usedOps).toEqual(
      ['Add', 'ConcatV2', 'Conv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative', 'Identity', 'Mean', 'Mul', 'Relu', 'Relu6', 'ResizeBilinear', 'Sigmoid', '_FusedConv2D'],
    );
    expect(model.logitsName).toBe('tower_0/CenternetHead/centernet_cls_output/BiasAdd');
    const data = imageToTensorData(readImage('assets/chelsea.png'), { width: 512, height: 512 }).map((v) => v * 255);
    const x = tensor(gpu, data, [1, 3, 512, 512]);
    const t0 = performance.now();
    const outs = await model.forwardAll(x);
    const kp = await outs['tower_0/keypoints']!.read();
    const ms = performance.now() - t0;
    expect(outs['tower_0/keypoints']!.shape).toEqual([1, 80, 128, 128]);
    expect(outs['tower_0/wh']!.shape).toEqual([1, 4, 128, 128]);
    const ref = await tfGraph(json, weights);
    const xt = nhwc(data, [1, 3, 512, 512]);
    const [rk, rw, rd] = ref.execute(xt, ['tower_0/keypoints', 'tower_0/wh', 'tower_0/detections']) as tf.Tensor[];
    expect(maxRelError(kp, await nchwData(rk!))).toBeLessThan(1e-3);
    expect(maxRelError(await outs['tower_0/wh']!.read(), await nchwData(rw!))).toBeLessThan(1e-3);
    // The graph's own decoding (TopKV2 over peaks) against ours, without suppression.
    const theirs = ((await rd!.array()) as number[][][])[0]!.filter((d) => d[4]! >= 0.2);
    const [ours] = await decodeCenterNet(outs['tower_0/keypoints']!, outs['tower_0/wh']!, 512, { iouThreshold: 1 });
    expect(theirs.length).toBeGreaterThan(0);
    expect(ours!.length).toBe(theirs.length);
    ours!.forEach((d, i) => {
      const [x1, y1, x2, y2, score, cls] = theirs[i]!;
      expect(d.classIndex).toBe(cls);
      expect(d.score).toBeCloseTo(score!, 4);
      expect(maxRelError(d.box, [x1!, y1!, x2!, y2!])).toBeLessThan(1e-3);
      expect(d.scores).toHaveLength(80);
      expect(d.scores[d.classIndex]).toBe(d.score);
    });
    // centernetDetect = forward + decode + suppression; a stand-in model replays the outputs above
    // (a second 512×512 forward costs half a minute on a CPU adapter).
    const replay = {
      gpu,
      forwardAll: async (_x: Tensor, o: { outputs: string[] }) => Object.fromEntries(o.outputs.map((k) => [k, outs[k]!.reshape(outs[k]!.shape)])),
    } as unknown as TfjsGraphModel;
    const [kept] = await centernetDetect(replay, x);
    console.log(`centernet forward ${ms.toFixed(0)} ms; detections: ${kept!.map((d) => `${d.label} ${d.score.toFixed(2)} [${d.box.map((v) => v.toFixed(0))}]`).join('; ')}`);
    // Its suppression (class-agnostic: a box overlapping a better one by IoU > 0.4 goes) against
    // TF.js's own non-max suppression over the graph's detections above; other thresholds through
    // decodeCenterNet on the same heat maps. Same detections, same order.
    const tfSuppressed = async (iouThreshold: number) => {
      const boxes = tf.tensor2d(theirs.map((d) => d.slice(0, 4)), [theirs.length, 4]);
      const scores = tf.tensor1d(theirs.map((d) => d[4]!));
      const idx = await tf.image.nonMaxSuppressionAsync(boxes, scores, theirs.length, iouThreshold);
      const out = Array.from(await idx.data(), (i) => theirs[i]!);
      tf.dispose([boxes, scores, idx]);
      return out;
    };
    const expectSame = (got: CenterNetDetection[], want: number[][], what: string) => {
      expect(got.map((d) => d.classIndex), what).toEqual(want.map((d) => d[5]));
      got.forEach((d, i) => {
        expect(d.score, what).toBeCloseTo(want[i]![4]!, 4);
        expect(maxRelError(d.box, want[i]!.slice(0, 4)), what).toBeLessThan(1e-3);
      });
    };
    // On the cat the graph gives 5 peaks on one box: the dog's best cell, a neighbouring dog cell
    // (IoU 0.97 with it) and three other classes at the best cell (IoU 1). 0.4 keeps one; 0.99 two.
    const want = await tfSuppressed(0.4);
    expect(want.length).toBeLessThan(theirs.length);
    expectSame(kept!, want, 'centernetDetect (IoU 0.4)');
    const [k99] = await decodeCenterNet(outs['tower_0/keypoints']!, outs['tower_0/wh']!, 512, { iouThreshold: 0.99 });
    const want99 = await tfSuppressed(0.99);
    expect(want99.length).toBeGreaterThan(want.length);
    expect(want99.length).toBeLessThan(theirs.length);
    expectSame(k99!, want99, 'decodeCenterNet (IoU 0.99)');
    for (const t of Object.values(outs)) t.dispose();
    tf.dispose([xt, rk!, rw!, rd!]);
    ref.dispose();
    x.dispose();
    model.dispose();
    expect(gpu.memory().inUse).toBe(before.inUse);
  });
});
