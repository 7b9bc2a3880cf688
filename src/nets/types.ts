/**
 * The interfaces models share: what training needs (Trainable), what the saliency methods need
 * (ExplainableModel) and what D-RISE needs of a detector (Detection, Detector). They live here, in
 * nets/, so that the model code never imports from saliency/ (layers import downward only);
 * saliency/ re-exports them.
 */
import type { Tensor } from '../runtime/tensor.js';
import type { Gpu } from '../runtime/gpu.js';
import type { Layer } from './model.js';

export interface ForwardOptions {
  /** Training mode: dropout is active. Default false (inference). */
  training?: boolean;
  /**
   * Stop before a final softmax/sigmoid layer and return its input (the logits). The saliency
   * methods score classes on logits, as the papers do.
   */
  logits?: boolean;
}

export interface Trainable {
  /** Runs the network on x [N, C, H, W]; records on the active tape like any op. */
  forward(x: Tensor, options?: ForwardOptions): Promise<Tensor>;
  /** Every trainable parameter (weights and biases), in a stable order, less the `frozen` layers'. */
  parameters(options?: { frozen?: readonly string[] }): Tensor[];
}

/** The model interface the methods use; `Model` from `modelFromSpec` and `loadModel` implements it. */
export interface ExplainableModel {
  readonly gpu: Gpu;
  readonly name: string;
  readonly inputShape: readonly number[];
  readonly layers: readonly Layer[];
  readonly layerNames: string[];
  /**
   * Grad-CAM's default layer, where the model knows it (imported graphs: the last value with a
   * spatial map before the global pooling). Without it the methods take the last conv or
   * activation layer with a spatial output.
   */
  readonly defaultCamLayer?: string;
  layer(name: string): Layer;
  forward(x: Tensor, options?: ForwardOptions): Promise<Tensor>;
}

/** One detection: a box [x1, y1, x2, y2] in input pixels, an objectness and per-class scores. */
export interface Detection {
  box: [number, number, number, number];
  objectness?: number;
  scores: number[];
}

/** Any detector: an image batch [B, C, H, W] in, one list of detections per image out. */
export type Detector = (images: Tensor) => Promise<Detection[][]>;
