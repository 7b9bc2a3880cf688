/**
 * The bundled models: their architectures, class names, and the trained weights committed in
 * models/. Train them again with `npm run train -- --model <name>`.
 */
import { ArgumentError } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
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

/** Loads a bundled, trained model by name, ready to use. */
export async function loadModel(gpu: Gpu, name: string): Promise<Model> {
  const spec = BUNDLED_MODELS[name];
  if (!spec) throw unknownModel(name);
  const url = bundledWeightsUrl(name);
  const bytes = await readUrl(url, name);
  return modelFromSafetensors(gpu, bytes, spec, `${name}.safetensors`);
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
