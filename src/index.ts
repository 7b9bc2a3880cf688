/**
 * webgpu-saliency: saliency maps for convolutional networks on WebGPU.
 *
 * - runtime: `initGpu`, `Tensor`, `tensor`, scopes, memory counters, the memory budget and
 *   automatic batch sizes (`BatchSizer`, `autoBatch`)
 * - `kernels`: the WGSL kernels behind typed wrappers
 * - `ops`: the same operations, differentiable on a `Tape`
 */
export * from './runtime/errors.js';
export { DEFAULT_LIMITS, LIMIT_ENVIRONMENT, getLimits, setLimits, type Limits } from './runtime/limits.js';
export { hasAsyncContext } from './runtime/queue.js';
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
  type KernelTime,
  type Profile,
  type ShaderDefines,
} from './runtime/gpu.js';
export { Tensor, tensor, empty, shapeSize, type DType } from './runtime/tensor.js';
export type { PoolStats, PeakReading, PeakWatch } from './runtime/pool.js';
export {
  BatchSizer,
  autoBatch,
  chooseBatchSize,
  checkBatchSize,
  defaultMemoryBudget,
  formatBytes,
  BROWSER_MEMORY_BUDGET,
  NODE_MEMORY_BUDGET,
  type BatchCost,
  type BatchSizerOptions,
  type ChooseBatchOptions,
  type MemoryEnvironment,
  type MessageLevel,
} from './runtime/memory.js';
export { fill, zeros, ones, clone } from './kernels/elementwise.js';
export {
  Tape,
  Gradients,
  LayerHook,
  noGrad,
  nameOutput,
  recordOp,
  registerBackward,
  defineOp,
  activationVariants,
  activeTape,
  type ActivationForward,
  type ActivationName,
  type ActivationOverrides,
  type ActivationRule,
  type ActivationRuleName,
  type ActivationRules,
  type ReluRule,
  type BackwardContext,
  type BackwardOptions,
  type BackwardRule,
  type OpDefinition,
  type UntypedSaved,
  type RuleOverrides,
} from './autodiff/tape.js';
export {
  Trace,
  tensorStats,
  formatTrace,
  formatTraceComparison,
  describeLayer,
  describeRules,
  zerosAfter,
  type TraceEntry,
  type TraceKernel,
  type TraceMode,
  type TraceRule,
  type TensorStats,
} from './autodiff/trace.js';
export type { RunOptions } from './autodiff/tape.js';
export * as ops from './autodiff/ops/index.js';
export * as kernels from './kernels/index.js';
export { parseSafetensors, serializeSafetensors, type NamedArray, type ParseSafetensorsOptions, type SafetensorsFile } from './nets/safetensors.js';
export { modelFromSpec, modelFromSafetensors, Model, type Layer, type ModelOptions, type SafetensorsModelOptions } from './nets/model.js';
export type { ModelSpec, LayerSpec, LayerType, Weights, ParamValue } from './nets/spec.js';
export type { ForwardOptions, Trainable } from './nets/types.js';
export { loadModel, BUNDLED_MODELS, FASHION_VGG, FASHION_GAP, FASHION_CLASSES, type AnyModel, type BundledModelName, type LoadModelOptions } from './nets/zoo.js';
export { loadOnnxModel, OnnxModel, ONNX_OPSETS, type OnnxModelOptions } from './nets/onnx/model.js';
export { SUPPORTED_ONNX_OPS } from './nets/onnx/ops/index.js';
export { GraphModel, type GraphLayer, type GraphForwardOptions, type InputNormalization } from './nets/graph/executor.js';
export { listLayers, type LayerInfo } from './nets/layers.js';
export { parseLabels, imagenetClasses } from './nets/labels.js';
export { IMAGENET_NORMALIZATION, parseNormalization } from './nets/normalization.js';
export type { ExplainableModel, Detection, Detector } from './nets/types.js';
export {
  loadTfjsGraphModel,
  decodeTfjsWeights,
  TfjsGraphModel,
  SUPPORTED_TFJS_OPS,
  type TfjsGraphOptions,
  type TfjsGraphSource,
  type TfjsWeightSource,
  type TfjsModelJson,
  type TfjsNode,
  type TfjsLayer,
  type TfjsForwardOptions,
  type HostTensor,
} from './nets/tfjs-graph.js';
export { loadTfjsLayersModel, loadTfjsModel, type TfjsLayersOptions } from './nets/tfjs-layers.js';
export {
  centernetDetect,
  centernetDetector,
  decodeCenterNet,
  COCO_CLASSES,
  CENTERNET_OUTPUTS,
  type CenterNetDetection,
  type CenterNetOptions,
} from './nets/centernet.js';
export { DataLoader, Rng, type Batch, type DataLoaderOptions, type Augment } from './nets/data.js';
export { SGD, Adam, type Optimizer, type SgdOptions, type AdamOptions } from './nets/optim.js';
export { crossEntropy, train, evaluate, predict, type TrainOptions, type TrainProgress, type TrainHistory, type EpochSummary } from './nets/train.js';
export * as saliency from './saliency/index.js';
export { metrics } from './saliency/index.js';
export * from './saliency/display.js';
export * from './saliency/colormaps.js';
export { displayMap, renderOverlay, renderColorbar, type RenderOptions } from './saliency/render.js';
export {
  detect,
  decodeDetections,
  detectionLoss,
  detectorGeometry,
  evaluateDetector,
  heldOutScene,
  scoredBoxes,
  trainDetector,
  DETECTOR_TEST_SEED,
  FASHION_DETECTOR,
  type DetectOptions,
  type DetectorGeometry,
  type DetectorScore,
  type TrainDetectorOptions,
} from './nets/detector.js';
export { iou, nms, meanAveragePrecision, type Box as DetectionBox, type ScoredBox } from './nets/boxes.js';
export { generateScene, type Scene, type SceneOptions, type SceneSource } from './nets/scenes.js';
