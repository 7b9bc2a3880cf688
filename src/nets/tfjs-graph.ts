/**
 * TF.js graph models (the model.json and *.bin weight shards that tensorflowjs_converter writes)
 * imported onto our kernels and autodiff, so that every saliency method runs on them and can hook
 * any node of the graph by its name.
 *
 * The importer lives in tfjs/ (format and checks, weights, reading, layout, the op table with one
 * module per op family, the graph) on the executor all graph formats share (graph/). This module is
 * its public face.
 */
export { loadTfjsGraphModel, TfjsGraphModel, type TfjsGraphOptions, type TfjsLayer, type TfjsForwardOptions } from './tfjs/graph.js';
export { readTfjsArtifacts, type TfjsArtifacts, type TfjsGraphSource, type TfjsWeightSource } from './tfjs/artifacts.js';
export { decodeTfjsWeights } from './tfjs/weights.js';
export { graphLimits } from './graph/executor.js';
export { SUPPORTED_TFJS_OPS } from './tfjs/ops/index.js';
export type { TfjsAttrValue, TfjsShapeProto, TfjsNode, TfjsWeightEntry, TfjsWeightsGroup, TfjsModelJson } from './tfjs/format.js';
export type { HostTensor, GraphLimits } from './graph/host.js';

/** Class names of the @vladmandic/human graph models, which their model.json files do not carry. */
export const GRAPH_MODEL_CLASSES: ReadonlyMap<string, readonly string[]> = new Map([
  ['emotion.json', Object.freeze(['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'])],
  ['antispoof.json', Object.freeze(['real face'])],
]);
