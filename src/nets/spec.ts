/**
 * Models as plain JSON. Example:
 *
 *   { "input": [1, 6, 6], "layers": [
 *       { "name": "conv1", "type": "conv2d", "in": 1, "out": 2, "kernel": 3 },
 *       { "name": "relu1", "type": "relu" },
 *       { "name": "pool1", "type": "maxpool2d", "kernel": 2, "stride": 2 },
 *       { "name": "flat", "type": "flatten" },
 *       { "name": "fc1", "type": "linear", "in": 8, "out": 4 } ] }
 *
 * Weights use PyTorch layouts: conv [out, in/groups, kh, kw], linear [out, in].
 */
export type Pair = number | [number, number];

interface Named {
  /** Hook point for the saliency methods. Default: `${type}${index}`. Must be unique. */
  name?: string;
}

export interface Conv2dLayerSpec extends Named {
  type: 'conv2d';
  in: number;
  out: number;
  kernel: Pair;
  stride?: Pair;
  /** Pixels, [vertical, horizontal], [top, bottom, left, right], or TF-style 'same' / 'valid'. */
  padding?: number | [number, number] | [number, number, number, number] | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

export interface ActivationLayerSpec extends Named {
  type: 'relu' | 'relu6' | 'sigmoid' | 'tanh' | 'leakyrelu';
  /** Negative slope of leakyrelu (default 0.01). */
  alpha?: number;
}

export interface PoolLayerSpec extends Named {
  type: 'maxpool2d' | 'avgpool2d';
  kernel: Pair;
  stride?: Pair;
  padding?: number | [number, number] | [number, number, number, number] | 'same' | 'valid';
  ceilMode?: boolean;
  /** avgpool2d: count padded pixels in the divisor (PyTorch default true). */
  countIncludePad?: boolean;
}

export interface LinearLayerSpec extends Named {
  type: 'linear';
  in: number;
  out: number;
  bias?: boolean;
}

export interface BatchNormLayerSpec extends Named {
  type: 'batchnorm';
  /** Channels (C of NCHW, or features of [N, F]). */
  features: number;
  eps?: number;
}

export interface DropoutLayerSpec extends Named {
  type: 'dropout';
  /** Probability of dropping a unit in training (default 0.5); identity at inference. */
  p?: number;
}

export interface SimpleLayerSpec extends Named {
  /** gap: global average pooling [N, C, H, W] → [N, C]. flatten: [N, C·H·W] in C,H,W order. */
  type: 'gap' | 'flatten' | 'softmax';
}

export type LayerSpec =
  | Conv2dLayerSpec
  | ActivationLayerSpec
  | PoolLayerSpec
  | LinearLayerSpec
  | BatchNormLayerSpec
  | DropoutLayerSpec
  | SimpleLayerSpec;

export type LayerType = LayerSpec['type'];

export const LAYER_TYPES: readonly LayerType[] = [
  'conv2d',
  'relu',
  'leakyrelu',
  'relu6',
  'sigmoid',
  'tanh',
  'maxpool2d',
  'avgpool2d',
  'gap',
  'flatten',
  'linear',
  'batchnorm',
  'dropout',
  'softmax',
];

export interface ModelSpec {
  /** Input shape of one sample, [C, H, W]. */
  input: [number, number, number];
  layers: LayerSpec[];
  /** Class names, one per output. */
  classes?: string[];
  /** A label for messages and files. */
  name?: string;
}

/** Values of one layer's parameters: flat arrays in PyTorch layout, or arrays with their shape. */
export type ParamValue = ArrayLike<number> | { data: ArrayLike<number>; shape: readonly number[] };

/** Weights by layer name: { conv1: { weight, bias }, bn1: { weight, bias, running_mean, running_var } }. */
export type Weights = Record<string, Record<string, ParamValue>>;

/** A conv2d layer spec with 'same'-size padding for odd kernels (k×k, stride 1): the bundled models' building block. */
export function sameConv(name: string, inChannels: number, out: number, kernel = 3): Conv2dLayerSpec {
  return { name, type: 'conv2d', in: inChannels, out, kernel, padding: (kernel - 1) / 2 };
}
