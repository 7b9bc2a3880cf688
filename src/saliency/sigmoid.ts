/**
 * Models with one sigmoid output p = σ(z) (a binary classifier such as human's antispoof, whose
 * output is the probability of "real face") stand for two classes: 0, the output's own class, with
 * score z, and 1, the other class, with probability 1 − p and score −z (the logit of 1 − p). The
 * command line and the web component report both sides and explain the one asked for.
 */
import * as ops from '../autodiff/ops/index.js';
import type { ExplainableModel } from './core.js';

/** Names of the other side where the model's own name for it is known. */
const OTHER_SIDE = new Map([['real face', 'spoof']]);

/** The name of class 1 of a one-output model whose output is the probability of `name`. */
export function otherClassName(name: string): string {
  return OTHER_SIDE.get(name) ?? `not ${name}`;
}

/**
 * The model with its output negated, so that every method explains class 1 (score −z). Guided
 * backprop, DeconvNet and Grad-CAM are not odd functions of the score: negating their maps
 * afterwards would not give this. CAM, which reads the linear layer's weights without a backward
 * pass, is the exception: its map for class 1 is its map for class 0, negated.
 */
export function negatedOutput(model: ExplainableModel): ExplainableModel {
  return {
    gpu: model.gpu,
    name: model.name,
    inputShape: model.inputShape,
    layers: model.layers,
    layerNames: model.layerNames,
    layer: (name) => model.layer(name),
    // The methods run the forward pass inside a GPU scope, which frees the model's output with the rest.
    forward: async (x, options) => ops.neg(await model.forward(x, options)),
  };
}
