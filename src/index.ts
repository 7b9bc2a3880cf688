/**
 * webgpu-saliency: saliency maps for convolutional networks on WebGPU.
 *
 * - runtime: `initGpu`, `Tensor`, `tensor`, scopes and memory counters
 * - `kernels`: the WGSL kernels behind typed wrappers
 * - `ops`: the same operations, differentiable on a `Tape`
 */
export * from './runtime/errors.js';
export {
  initGpu,
  registerShader,
  preprocess,
  Gpu,
  Uniforms,
  type AdapterReport,
  type Bindable,
  type DispatchArgs,
  type Disposable,
  type InitGpuOptions,
  type Kernel,
  type ShaderDefines,
} from './runtime/gpu.js';
export { Tensor, tensor, empty, shapeSize, type DType } from './runtime/tensor.js';
export type { PoolStats } from './runtime/pool.js';
export { fill, zeros, ones, clone } from './kernels/elementwise.js';
export {
  Tape,
  Gradients,
  LayerHook,
  noGrad,
  nameOutput,
  recordOp,
  registerBackward,
  registerActivationRule,
  activationVariants,
  activeTape,
  type ActivationForward,
  type ActivationName,
  type ActivationRule,
  type BackwardContext,
  type BackwardOptions,
  type BackwardRule,
  type RuleOverrides,
} from './autodiff/tape.js';
export * as ops from './autodiff/ops/index.js';
export * as kernels from './kernels/index.js';
export { parseSafetensors, serializeSafetensors, type NamedArray, type SafetensorsFile } from './nets/safetensors.js';
export { modelFromSpec, modelFromSafetensors, Model, type Layer, type ModelOptions } from './nets/model.js';
export type { ModelSpec, LayerSpec, LayerType, Weights, ParamValue } from './nets/spec.js';
export type { ForwardOptions, Trainable } from './nets/types.js';
export { loadModel, BUNDLED_MODELS, FASHION_VGG, FASHION_GAP, FASHION_CLASSES } from './nets/zoo.js';
export { DataLoader, Rng, type Batch, type DataLoaderOptions, type Augment } from './nets/data.js';
export { SGD, Adam, type Optimizer, type SgdOptions, type AdamOptions } from './nets/optim.js';
export { crossEntropy, train, evaluate, predict, type TrainOptions, type TrainProgress, type TrainHistory, type EpochSummary } from './nets/train.js';
export * as saliency from './saliency/index.js';
