/**
 * The bundled models: their architectures, class names, and the trained weights committed in
 * models/. Train them again with `npm run train -- --model <name>`.
 */
import { ArgumentError } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import type { GraphModel, InputNormalization } from './graph/executor.js';
import { hostLimits } from './graph/host.js';
import { openModelSource } from './graph/source.js';
import { loadOnnxModel } from './onnx/model.js';
import { loadTfjsModel } from './tfjs-layers.js';
import { modelFromSafetensors, type Model } from './model.js';
import { sameConv as conv, type ModelSpec } from './spec.js';
import { FASHION_CLASSES } from './classes.js';
import { FASHION_DETECTOR } from './detector-spec.js';

export { FASHION_CLASSES };


/** VGG-style: (conv-relu-conv-relu-maxpool) twice, then two linear layers. For DeconvNet and guided backprop. */
export const FASHION_VGG: ModelSpec = {
  name: 'fashion-vgg',
  input: [1, 28, 28],
  classes: [...FASHION_CLASSES],
  layers: [
    conv('conv1', 1, 16),
    { name: 'relu1', type: 'relu' },
    conv('conv2', 16, 16),
    { name: 'relu2', type: 'relu' },
    { name: 'pool1', type: 'maxpool2d', kernel: 2 },
    conv('conv3', 16, 32),
    { name: 'relu3', type: 'relu' },
    conv('conv4', 32, 32),
    { name: 'relu4', type: 'relu' },
    { name: 'pool2', type: 'maxpool2d', kernel: 2 },
    { name: 'flatten', type: 'flatten' },
    { name: 'fc1', type: 'linear', in: 32 * 7 * 7, out: 128 },
    { name: 'relu5', type: 'relu' },
    { name: 'dropout', type: 'dropout', p: 0.3 },
    { name: 'fc2', type: 'linear', in: 128, out: 10 },
  ],
};

/**
 * Conv stack → global average pooling → one linear layer: the head CAM needs. Its first four
 * convolutions have fashion-vgg's names and shapes, so that it can start from them
 * (`--init models/fashion-vgg.safetensors`): trained from scratch, a GAP head this small learns
 * slowly (85% after 3 epochs).
 */
export const FASHION_GAP: ModelSpec = {
  name: 'fashion-gap',
  input: [1, 28, 28],
  classes: [...FASHION_CLASSES],
  layers: [
    conv('conv1', 1, 16),
    { name: 'relu1', type: 'relu' },
    conv('conv2', 16, 16),
    { name: 'relu2', type: 'relu' },
    { name: 'pool1', type: 'maxpool2d', kernel: 2 },
    conv('conv3', 16, 32),
    { name: 'relu3', type: 'relu' },
    conv('conv4', 32, 32),
    { name: 'relu4', type: 'relu' },
    { name: 'pool2', type: 'maxpool2d', kernel: 2 },
    conv('conv5', 32, 128),
    { name: 'relu5', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'fc', type: 'linear', in: 128, out: 10 },
  ],
};

/** The bundled architectures by name (no prototype: `BUNDLED_MODELS['constructor']` is undefined). */
export const BUNDLED_MODELS: Readonly<Record<string, ModelSpec>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, ModelSpec>, {
    'fashion-vgg': FASHION_VGG,
    'fashion-gap': FASHION_GAP,
    'fashion-detector': FASHION_DETECTOR,
  }),
);

/** Where a bundled model's weights live (a file: URL in Node, an http URL in a browser bundle). */
export function bundledWeightsUrl(name: string): URL {
  const spec = BUNDLED_MODELS[name];
  if (!spec) throw unknownModel(name);
  return new URL(`../../models/${name}.safetensors`, import.meta.url);
}

function unknownModel(name: string): ArgumentError {
  return new ArgumentError(`no bundled model named '${name}'; bundled: ${Object.keys(BUNDLED_MODELS).join(', ')}`);
}

/** The names of the bundled models. */
export type BundledModelName = 'fashion-vgg' | 'fashion-gap' | 'fashion-detector';

/** Any model `loadModel` returns: ours (Model: bundled, safetensors, TF.js layers) or an imported graph (TF.js graph, ONNX). */
export type AnyModel = Model | GraphModel;

export interface LoadModelOptions {
  /** Class names of the main output (imported graphs; a safetensors file carries its own). */
  classNames?: string[];
  /** Per-sample input shape for an imported graph that leaves dimensions open. */
  inputShape?: number[];
  /** ONNX: put (x − mean)/std per channel in front of the model (it then takes pixels in [0, 1]). */
  normalize?: InputNormalization;
}

/**
 * Loads a model: a bundled one by name ('fashion-vgg', 'fashion-gap', 'fashion-detector'), or a
 * file by path (Node) or URL whose name ends in '.onnx' (loadOnnxModel), '.json' (a TF.js graph or
 * layers model.json) or '.safetensors' (our own format, the spec in its metadata).
 */
export function loadModel(gpu: Gpu, name: BundledModelName): Promise<Model>;
export function loadModel(gpu: Gpu, source: string | URL, options?: LoadModelOptions): Promise<AnyModel>;
export async function loadModel(gpu: Gpu, source: string | URL, options: LoadModelOptions = {}): Promise<AnyModel> {
  if (typeof source === 'string' && Object.hasOwn(BUNDLED_MODELS, source)) {
    if (options.normalize || options.inputShape) throw new ArgumentError(`loadModel: '${source}' is a bundled model; normalize and inputShape apply to imported graphs`);
    const url = bundledWeightsUrl(source);
    const bytes = await readUrl(url, source);
    return modelFromSafetensors(gpu, bytes, BUNDLED_MODELS[source], `${source}.safetensors`);
  }
  if (typeof source !== 'string' && !(source instanceof URL)) throw new ArgumentError('loadModel: the model must be a bundled name, a path or a URL');
  if (typeof source === 'string' && !/[./\\]/.test(source)) throw unknownModel(source); // a name, not a file
  const path = source.toString().replace(/[?#].*$/, '');
  if (/\.onnx$/i.test(path)) return loadOnnxModel(gpu, source, options);
  if (options.normalize) throw new ArgumentError(`loadModel: normalize applies to ONNX models; '${path}' is not one`);
  if (/\.json$/i.test(path)) return loadTfjsModel(gpu, source, { classNames: options.classNames, inputShape: options.inputShape });
  if (/\.safetensors$/i.test(path)) {
    const src = await openModelSource(source, { what: 'loadModel', maxBytes: hostLimits().maxBytes, extension: /\.safetensors$/i });
    return modelFromSafetensors(gpu, src.bytes, undefined, src.where);
  }
  throw new ArgumentError(
    `model '${path.slice(0, 200)}' is neither a bundled model (${Object.keys(BUNDLED_MODELS).join(', ')}) nor a file ending in .onnx, .json (TF.js) or .safetensors`,
  );
}

async function readUrl(url: URL, name: string): Promise<Uint8Array> {
  const missing = () =>
    new ArgumentError(`the weights of '${name}' are missing (${url.pathname}); train them with 'npm run train -- --model ${name}'`);
  if (url.protocol === 'file:') {
    const fsName = 'node:fs/promises'; // hidden from bundlers: only Node reads files
    const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs/promises');
    try {
      return new Uint8Array(await fs.readFile(url));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
      throw e;
    }
  }
  const res = await fetch(url);
  if (!res.ok) throw res.status === 404 ? missing() : new ArgumentError(`could not fetch ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}
