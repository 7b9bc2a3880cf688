/**
 * Measuring saliency maps (docs/metrics.md): faithfulness (deletion, insertion, ROAD, Average Drop
 * and Increase in Confidence), stability (max-sensitivity), the model-randomisation sanity check and
 * the pointing game. Every metric takes a batch of images x [N, C, H, W] and their maps; perturbed
 * images are made on the GPU and scored in batches that fit the Gpu's memory budget (`batchSize`,
 * default 'auto'); long runs report progress and stop on an AbortSignal, leaving no GPU memory
 * behind.
 */
export { deletion, insertion, blurImages, gaussianKernel, type Baseline, type CurveOptions, type CurveResult } from './curves.js';
export { road, removedPixels, ROAD_PERCENTAGES, type RoadOptions, type RoadResult } from './road.js';
export { averageDrop, type AverageDropOptions, type AverageDropResult } from './average-drop.js';
export { maxSensitivity, type MaxSensitivityOptions, type MaxSensitivityResult } from './sensitivity.js';
export {
  randomisation,
  reinitialisedCopy,
  parameterisedLayers,
  redrawWeights,
  type ClonableModel,
  type RandomisationOptions,
  type RandomisationResult,
  type RandomisationStep,
} from './randomisation.js';
export { pointingGame, type PointingGameOptions, type PointingGameResult } from './pointing-game.js';
export { metricMethod, explainInBatches, batchesItself, smallestSettings, METRIC_METHODS, type ExplainBatchesOptions, type MethodFunction, type MetricMethod } from './methods.js';
export {
  classScores,
  METRIC_MAX_AUTO_BATCH,
  randomMap,
  rankPixels,
  reduceMap,
  type MapInput,
  type MapKind,
  type MetricOptions,
  type MetricTarget,
  type ScoreKind,
} from './common.js';
export { curveAuc, spearman, pearson, averageRanks, ssim, meanAndStd, type SsimOptions } from './stats.js';
