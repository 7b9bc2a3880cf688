/**
 * The loaders the fuzz suite attacks: one entry each. An entry gives the real files it starts from
 * (`seeds`), how to mutate one (`mutate`, from mutate.mjs), and how to load the result (`load`),
 * which must end in a model or image (then freed) or a SaliencyError. To cover a new loader, add an
 * entry here; nothing else changes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mutateBytes, mutateJpeg, mutatePng, mutateSafetensors, mutateTfjs } from './mutate.mjs';

/** The built library (npm run build): the worker runs in plain Node, without TypeScript. */
export async function library(root) {
  const dist = (p) => import(join(root, 'dist', p));
  return {
    ...(await dist('runtime/gpu.js')),
    ...(await dist('runtime/errors.js')),
    ...(await dist('runtime/limits.js')),
    ...(await dist('nets/model.js')),
    ...(await dist('nets/tfjs-layers.js')),
    ...(await dist('nets/onnx/model.js')),
    ...(await dist('nets/onnx/schema.js')),
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

  /**
   * ONNX: a real PyTorch export (torchvision squeezenet1_1, test/fixtures/onnx) and a real pretrained
   * model (PaddleOCR's text orientation classifier), changed in their protobuf structure (node ops,
   * attributes, initialiser shapes, types and data, the opset, the input's dimensions) or as bytes.
   */
  onnx: {
    seeds: (lib, root) =>
      [join(root, 'test', 'fixtures', 'onnx', 'squeezenet1_1.onnx'), join(root, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')].map(
        (file) => ({ bytes: new Uint8Array(readFileSync(file)), decode: lib.decodeModelProto, encode: lib.encodeModelProto }),
      ),
    mutate: mutateOnnx,
    load: (lib, gpu, bytes) => lib.loadOnnxModel(gpu, bytes, { inputShape: [3, 48, 192], name: 'fuzz' }).catch((e) => {
      // A model whose input is not [3, 48, 192] (squeezenet's is [3, 64, 64]) is retried without it.
      if (e instanceof lib.ArgumentError && /inputShape/.test(e.message)) return lib.loadOnnxModel(gpu, bytes, { name: 'fuzz' });
      throw e;
    }),
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

const INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 64, 255, 1000, 65535, 100000, 2 ** 31 - 1, -(2 ** 31), 2 ** 40];
const OPS = ['Conv', 'Relu', 'Gemm', 'Reshape', 'Concat', 'MaxPool', 'Resize', 'Pad', 'Slice', 'Gather', 'constructor', '__proto__', 'toString', '', 'Loop'];

/** An ONNX model changed in its structure (decoded with the importer's schema, changed, encoded again) or in its bytes. */
function mutateOnnx(seed, r) {
  if (r.chance(0.3)) return mutateBytes(seed.bytes, r);
  const m = seed.decode(seed.bytes, 'fuzz');
  const g = m.graph;
  const nodes = g.node ?? [];
  const inits = g.initializer ?? [];
  const n = 1 + r.int(3);
  for (let k = 0; k < n; k++) {
    switch (r.int(9)) {
      case 0: if (nodes.length) r.pick(nodes).opType = r.pick(OPS); break;
      case 1: {
        const node = nodes.length ? r.pick(nodes) : null;
        const a = node?.attribute?.length ? r.pick(node.attribute) : null;
        if (a?.ints?.length) a.ints[r.int(a.ints.length)] = r.pick(INTERESTING_INTS);
        else if (a) a.i = r.pick(INTERESTING_INTS);
        break;
      }
      case 2: if (inits.length) { const t = r.pick(inits); if (t.dims?.length) t.dims[r.int(t.dims.length)] = r.pick(INTERESTING_INTS); } break;
      case 3: if (inits.length) r.pick(inits).dataType = r.int(24); break;
      case 4: if (inits.length) { const t = r.pick(inits); if (t.rawData?.length) t.rawData = t.rawData.subarray(0, r.int(t.rawData.length)); } break;
      case 5: m.opsetImport = [{ domain: '', version: r.pick([1, 6, 8, 9, 13, 21, 22, 1000]) }]; break;
      case 6: { const dims = g.input?.[0]?.type?.tensorType?.shape?.dim; if (dims?.length) dims[r.int(dims.length)] = r.chance(0.5) ? { dimValue: r.pick(INTERESTING_INTS) } : { dimParam: 'x' }; break; }
      case 7: if (nodes.length) { const node = r.pick(nodes); if (node.input?.length) node.input[r.int(node.input.length)] = r.chance(0.5) ? r.pick(nodes).output?.[0] ?? 'x' : 'nothing'; } break;
      default: if (nodes.length > 1) nodes.splice(r.int(nodes.length), 1); break;
    }
  }
  return seed.encode(m);
}
