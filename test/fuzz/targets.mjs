/**
 * The loaders the fuzz suite attacks: one entry each. An entry gives the real files it starts from
 * (`seeds`), how to mutate one (`mutate`, from mutate.mjs), and how to load the result (`load`),
 * which must end in a model or image (then freed) or a SaliencyError. To cover a new loader, add an
 * entry here; nothing else changes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mutateJpeg, mutatePng, mutateSafetensors, mutateTfjs } from './mutate.mjs';

/** The built library (npm run build): the worker runs in plain Node, without TypeScript. */
export async function library(root) {
  const dist = (p) => import(join(root, 'dist', p));
  return {
    ...(await dist('runtime/gpu.js')),
    ...(await dist('runtime/errors.js')),
    ...(await dist('runtime/limits.js')),
    ...(await dist('nets/model.js')),
    ...(await dist('nets/tfjs-layers.js')),
    ...(await dist('saliency/image.js')),
  };
}

const HUMAN = 'node_modules/@vladmandic/human/models';

/** A small crop of a real photograph (assets/chelsea.png), so that decoding stays fast. */
function photoCrop(lib, root) {
  const img = lib.readImage(join(root, 'assets', 'chelsea.png'));
  const [w, h, x0, y0] = [40, 30, 180, 120];
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * 4, ((y0 + y) * img.width + x0 + w) * 4), y * w * 4);
  return { width: w, height: h, data };
}

export const TARGETS = {
  /** Our weights format: the bundled fashion-gap file, spec in its metadata. */
  safetensors: {
    seeds: (lib, root) => [new Uint8Array(readFileSync(join(root, 'models', 'fashion-gap.safetensors')))],
    mutate: mutateSafetensors,
    load: (lib, gpu, bytes) => lib.modelFromSafetensors(gpu, bytes, undefined, 'fuzz.safetensors'),
  },

  /** A TF.js graph model and its weight shard (human's emotion model), read from files as the CLI does. */
  'tfjs-graph': {
    seeds: (lib, root) => [{ json: readFileSync(join(root, HUMAN, 'emotion.json'), 'utf8'), shard: new Uint8Array(readFileSync(join(root, HUMAN, 'emotion.bin'))) }],
    mutate: mutateTfjs,
    load: async (lib, gpu, files, scratch) => {
      mkdirSync(scratch, { recursive: true });
      writeFileSync(join(scratch, 'emotion.json'), files.json);
      writeFileSync(join(scratch, 'emotion.bin'), files.shard);
      return lib.loadTfjsModel(gpu, join(scratch, 'emotion.json'));
    },
  },

  /** PNG: a crop of a real photograph, as pngjs writes it. */
  png: {
    seeds: (lib, root) => [lib.encodePng(photoCrop(lib, root))],
    mutate: mutatePng,
    load: (lib, gpu, bytes) => lib.decodeImage(bytes, 'fuzz.png'),
  },

  /** JPEG: the same crop, baseline-encoded by jpeg-js. */
  jpeg: {
    seeds: async (lib, root) => {
      const jpeg = (await import('jpeg-js')).default;
      return [new Uint8Array(jpeg.encode(photoCrop(lib, root), 80).data)];
    },
    mutate: mutateJpeg,
    load: (lib, gpu, bytes) => lib.decodeImage(bytes, 'fuzz.jpg'),
  },
};
