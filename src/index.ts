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
