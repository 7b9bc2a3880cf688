/**
 * `listLayers(model)`: the hook points of any model (bundled, safetensors, TF.js layers and graph,
 * ONNX), as `saliency layers` prints them: name, op, our layer type, output shape per image, weight
 * count.
 */
import type { Layer } from './model.js';
import type { ExplainableModel } from './types.js';

export interface LayerInfo {
  /** The hook point's name (--layer, a neuron target's layer). */
  name: string;
  /** The format's op ('Conv', '_FusedConv2D'), or our layer type for our own models. */
  op: string;
  /** Our nearest layer type ('conv2d', 'relu', 'gap', …). */
  type: string;
  /** Output shape per image ([C, H, W] for feature maps). */
  outputShape: number[];
  /** Number of weight values. */
  parameters: number;
  /** The node's name where it differs from the hook point's (ONNX); it finds the same layer. */
  node?: string;
}

type GraphLike = Layer & { op?: string; node?: string };

/** The layers of a model, in the order they run. */
export function listLayers(model: ExplainableModel): LayerInfo[] {
  return model.layers.map((l: GraphLike) => ({
    name: l.name,
    op: l.op ?? l.type,
    type: l.type,
    outputShape: [...l.outputShape],
    // Derived values (batch norm's folded scale and shift, named with a leading '_') are not weights of the file.
    parameters: [...l.params.entries()].filter(([k]) => !k.startsWith('_')).reduce((a, [, t]) => a + t.size, 0),
    ...(l.node !== undefined ? { node: l.node } : {}),
  }));
}
