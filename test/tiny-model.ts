/**
 * A network small enough to follow on paper, shared by the method and trace tests:
 *
 *   x = [[1, 2, 3], [4, 5, 6], [7, 8, -9]]
 *   conv1 (2×2, no padding): filter 0 = [[1, 0], [0, 0]] (copies the top-left pixel),
 *                            filter 1 = [[0, 0], [0, -1]] (minus the bottom-right pixel)
 *   relu1: map 0 = [[1, 2], [4, 5]];  map 1 = relu([[-5, -6], [-8, 9]]) = [[0, 0], [0, 9]]
 *   flatten: [1, 2, 4, 5, 0, 0, 0, 9]
 *   fc: class 0 weighs every feature (W0), class 1 map 1 only, its last unit negatively (W1).
 */
import { modelFromSpec } from '../src/nets/model.js';
import type { ModelSpec } from '../src/nets/spec.js';
import { tensor } from '../src/runtime/tensor.js';
import { getGpu } from './helpers.js';

export const X = [1, 2, 3, 4, 5, 6, 7, 8, -9];
export const CONV = { weight: [1, 0, 0, 0, 0, 0, 0, -1], bias: [0, 0] };
export const W0 = [1, 1, 1, 1, 1, 1, 1, 1]; // class 0: every feature
export const W1 = [0, 0, 0, 0, 1, 1, 1, -1]; // class 1: map 1 only, the last unit negatively

export const tinySpec: ModelSpec = {
  name: 'tiny',
  input: [1, 3, 3],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 2 },
    { name: 'relu1', type: 'relu' },
    { name: 'flat', type: 'flatten' },
    { name: 'fc', type: 'linear', in: 8, out: 2 },
  ],
};

/** The same conv1 + relu1, then global average pooling, a linear layer and softmax: CAM applies. */
export const tinyGapSpec: ModelSpec = {
  name: 'tiny-gap',
  input: [1, 3, 3],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 2 },
    { name: 'relu1', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'fc', type: 'linear', in: 2, out: 2 },
    { name: 'probs', type: 'softmax' },
  ],
};

/** The file's GPU, the tiny model and x as a [1, 1, 3, 3] tensor. */
export async function setupTiny() {
  const gpu = await getGpu();
  const model = modelFromSpec(gpu, tinySpec, { conv1: CONV, fc: { weight: [...W0, ...W1], bias: [0.5, -0.5] } });
  const x = tensor(gpu, X, [1, 1, 3, 3]);
  return { gpu, model, x };
}
