/** The architecture of the bundled detector (see detector.ts for what its outputs mean). */
import { sameConv as conv, type ModelSpec } from './spec.js';
import { FASHION_CLASSES } from './classes.js';

/** 96×96 grey scenes → a 12×12 grid (stride 8), 10 Fashion-MNIST classes. */
export const FASHION_DETECTOR: ModelSpec = {
  name: 'fashion-detector',
  input: [1, 96, 96],
  classes: [...FASHION_CLASSES],
  layers: [
    conv('conv1', 1, 16),
    { name: 'relu1', type: 'relu' },
    { name: 'pool1', type: 'maxpool2d', kernel: 2 },
    conv('conv2', 16, 32),
    { name: 'relu2', type: 'relu' },
    { name: 'pool2', type: 'maxpool2d', kernel: 2 },
    conv('conv3', 32, 64),
    { name: 'relu3', type: 'relu' },
    { name: 'pool3', type: 'maxpool2d', kernel: 2 },
    conv('conv4', 64, 64),
    { name: 'relu4', type: 'relu' },
    // A fifth 3×3 layer on the grid widens the receptive field to 54 pixels, more than the largest
    // item (44), so that each cell sees the whole object whose box and class it predicts.
    conv('conv5', 64, 64),
    { name: 'relu5', type: 'relu' },
    conv('head', 64, 15, 1),
  ],
};

