/** The architecture of the bundled detector (see detector.ts for what its outputs mean). */
import { sameConv as conv, type ModelSpec } from './spec.js';
import { FASHION_CLASSES } from './classes.js';

/**
 * 96×96 grey scenes → a 12×12 grid (stride 8), 10 Fashion-MNIST classes.
 *
 * Its first four convolutions have fashion-vgg's names and shapes, so that training can start
 * from the classifier's features (`train --init models/fashion-vgg.safetensors`): the items in
 * the scenes are Fashion-MNIST items resized to 24–44 pixels (0.86 to 1.57 times), and telling a shirt from a
 * T-shirt is most of the work. Three more 3×3 layers (conv5 at stride 4, conv6 and conv7 on the
 * grid) widen the receptive field to 60 pixels, more than the largest item (44), so that each
 * cell sees the whole object whose box and class it predicts.
 */
export const FASHION_DETECTOR: ModelSpec = {
  name: 'fashion-detector',
  input: [1, 96, 96],
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
    conv('conv5', 32, 64),
    { name: 'relu5', type: 'relu' },
    { name: 'pool3', type: 'maxpool2d', kernel: 2 },
    conv('conv6', 64, 64),
    { name: 'relu6', type: 'relu' },
    conv('conv7', 64, 64),
    { name: 'relu7', type: 'relu' },
    conv('head', 64, 15, 1),
  ],
};
