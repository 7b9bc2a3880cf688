/**
 * The saliency methods. Each takes a model, a batch x [N, C, H, W] and options with a `target`,
 * and returns a raw Tensor (see ../../shared/docs/methods.md for the exact definitions):
 *
 * | method | returns |
 * |---|---|
 * | vanilla, deconvnet, guidedBackprop, gradTimesInput, smoothGrad, guidedGradCam | input shape |
 * | cam, gradCam | [N, 1, H, W] (or [N, 1, h, w] with upsample: 'none') |
 * | drise (a detector method) | [T, 1, H, W], one map per target detection |
 *
 * `METHODS` lists them all with their labels, options and display kinds, and `runMethod(name, …)`
 * runs any of them by name (see methods.ts).
 */
export { vanilla, deconvnet, guidedBackprop, gradTimesInput, type GradientOptions, type GradTimesInputOptions } from './gradients.js';
export { smoothGrad, type SmoothGradOptions } from './smoothgrad.js';
export { cam, camFeatureLayer, gradCam, guidedGradCam, type CamOptions, type Upsample } from './cam.js';
export { defaultCamLayer, type ExplainableModel, type NeuronSeed, type NeuronTarget, type ScoreOptions, type Target } from './core.js';
export { drise, driseWeights, driseMasks, similarity, iou, type Detection, type Detector, type DriseOptions, type DriseResult } from './drise.js';
export {
  METHODS,
  METHOD_NAMES,
  CLASSIFIER_METHOD_NAMES,
  isMethodName,
  methodByName,
  runMethod,
  type ClassifierMethod,
  type ClassifierMethodName,
  type ClassifierOption,
  type ClassifierSettings,
  type DetectorMethod,
  type DetectorMethodName,
  type DetectorOption,
  type DetectorSettings,
  type DisplayKind,
  type MethodEntry,
  type MethodName,
} from './methods.js';
export { MethodTrace, type TraceOn, type Traced } from './trace.js';
export * as metrics from './metrics/index.js';
