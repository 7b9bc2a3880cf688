/**
 * Differentiable ops: each runs its kernel and, while a tape is recording, appends the entry its
 * backward rule needs. Importing this module registers every backward rule.
 */
export { activation, relu, relu6, leakyRelu, sigmoid, tanh } from './activation.js';
export { clip, hardSigmoid, hardSwish, prelu } from './piecewise.js';
export { conv2d } from './conv.js';
export { convTranspose2d, type ConvTranspose2dParams } from './conv-transpose.js';
export { add, sub, mul, div, scale, neg } from './elementwise.js';
export { linear, matmulOp as matmul, type LinearOptions } from './linear.js';
export { gemm, matmulNd, type GemmOptions } from './gemm.js';
export { pad, type PadMode, type PadOptions } from './pad.js';
export { batchNorm, type BatchNormParams } from './batchnorm.js';
export { maxPool2d, avgPool2d, globalAvgPool, globalMaxPool } from './pool.js';
export { sum, mean, max, softmax, logSoftmax } from './reduce.js';
export { resize, type ResizeOptions, type ResizeMode, type CoordinateTransformationMode, type NearestMode } from './resize.js';
export { reshape, flatten, concat, slice, transpose, broadcastTo } from './shape.js';
