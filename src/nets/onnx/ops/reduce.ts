/**
 * ONNX reductions ReduceMean, ReduceSum, ReduceMax (axes from the attribute, or from the input for
 * ReduceSum since opset 13 and the others since 18; keepdims). A mean over the spatial axes is a
 * global average pooling ('gap'), which Grad-CAM's default layer and CAM's head look for.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult } from '../../graph/executor.js';
import { intValues, normalizeAxes, optionalConst, runtimeInput, type OnnxContext, type OnnxOpBuilder } from './context.js';

type Reduce = (x: Tensor, axes: number[], keep: boolean) => Promise<Tensor>;

export function reduction(fn: Reduce, kind: 'mean' | 'sum' | 'max', axesInputSince: number): OnnxOpBuilder {
  return (c: OnnxContext): OpResult => {
    const x = runtimeInput(c, 0);
    const rank = x.length;
    let given: number[] | undefined;
    if (c.opset >= axesInputSince) {
      const a = optionalConst(c, 1, 'axes');
      given = a ? intValues(a, c, 'axes') : undefined;
    } else if (c.attrs.has('axes')) given = c.attrs.ints('axes');
    const keep = c.attrs.int('keepdims', 1) === 1;
    if (!given?.length) {
      if (c.attrs.int('noop_with_empty_axes', 0) === 1) return { shape: x, type: 'identity', run: async ([t]) => t!.reshape(t!.shape) };
      given = x.map((_, i) => i);
    }
    const axes = normalizeAxes(c, given, rank).sort((p, q) => p - q);
    if (axes.includes(0)) throw new FormatError(`${c.where}: reducing over the batch axis is not supported`);
    const shape = keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i));
    const spatial = rank >= 3 && axes.join() === x.slice(2).map((_, i) => i + 2).join();
    return {
      shape,
      type: spatial && kind === 'mean' ? 'gap' : spatial && kind === 'max' ? 'globalmaxpool' : kind,
      run: ([t]) => fn(t!, axes, keep),
    };
  };
}

export const reduceMean = reduction(ops.mean, 'mean', 18);
export const reduceSum = reduction(ops.sum, 'sum', 13);
export const reduceMax = reduction(ops.max, 'max', 18);
