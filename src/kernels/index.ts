/**
 * The raw kernels: typed wrappers that validate shapes, compile (once) and dispatch WGSL. They
 * record nothing for autodiff; use `ops` for differentiable versions.
 */
export * from './activation.js';
export { ACTIVATIONS, ACTIVATION_WGSL, type Activation, linearWorkgroups, samePadding } from './common.js';
export {
  conv2dForward,
  conv2dBackwardInput,
  conv2dBackwardFilter,
  conv2dBackwardBias,
  conv2dOutputShape,
  conv2dStrategy,
  conv2dSettings,
  type Conv2dSettings,
  setConv2dGridLimitForTesting,
  conv2dDispatchSizes,
  type Conv2dDispatchSizes,
  type Conv2dLimits,
  setConv2dTile,
  checkConv2dTile,
  setConv2dSplitK,
  setConv2dDirectBlock,
  checkConv2dDirectBlock,
  parseConv2dDirectBlock,
  directBlockFor,
  conv2dDirectBlock,
  formatConv2dDirectBlock,
  type Conv2dDirectBlock,
  parseConv2dTile,
  formatConv2dTile,
  CONV2D_TILE_CANDIDATES,
  type Conv2dTile,
  setConv2dStrategy,
  type Conv2dStrategy,
  normalizeConv2dParams,
  type Conv2dParams,
  type NormalizedConv2dParams,
} from './conv2d.js';
export * from './conv-transpose.js';
export * from './elementwise.js';
export * from './matmul.js';
export * from './gemm.js';
export * from './pad.js';
export * from './batchnorm.js';
export * from './piecewise.js';
export * from './pool.js';
export {
  sum,
  mean,
  max,
  maxWithIndices,
  maxBackward,
  sumToShape,
  normalizeAxes,
  reducedShape,
  type Axes,
} from './reduce.js';
export * from './resize.js';
export * from './shape.js';
export * from './softmax.js';
export { randomNormal, randomUniform, type RandomOptions } from './random.js';
export { selectByRank, imputeNoisyLinear, type RankItem, type ImputeOptions, type ImputeResult } from './perturb.js';
