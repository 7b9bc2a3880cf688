/**
 * Node-only additions (file system, gzip): `import { loadFashionMnist } from 'webgpu-saliency/node'`.
 * The main entry point stays free of Node modules so that it bundles for browsers.
 */
export { readIdx, parseIdx, loadFashionMnist, FASHION_MNIST_DIR, type IdxArray, type FashionMnist } from './nets/idx.js';
export {
  readImage,
  decodeImage,
  encodePng,
  writePng,
  imageToTensorData,
  tileImages,
  drawText,
  drawBox,
  detectFormat,
  type DecodeImageOptions,
  type ReadImageOptions,
  type ImageToTensorOptions,
  type TileOptions,
} from './saliency/image.js';
export { encodeNpy, decodeNpy, writeNpy, type NpyArray } from './runtime/npy.js';
export { readRegularFile, readModelFile, resolveInside, writeFileAtomic, makeDirectory, type ReadLimits } from './runtime/files.js';
