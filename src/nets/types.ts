/** The interface training and the saliency methods need from a model. */
import type { Tensor } from '../runtime/tensor.js';

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
