/**
 * ONNX pooling: MaxPool (ceil_mode, pads, dilations, auto_pad), AveragePool (count_include_pad, ceil_mode, dilations),
 * GlobalAveragePool and GlobalMaxPool, 1-D and 2-D.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult } from '../../graph/executor.js';
import { using } from '../../graph/ops.js';
import { as2d, window } from './conv.js';
import { runtimeInput, type OnnxContext, type OnnxOpBuilder } from './context.js';

export function pool(kind: 'max' | 'avg'): OnnxOpBuilder {
  return (c: OnnxContext): OpResult => {
    const x = runtimeInput(c, 0, [3, 4]);
    const r = x.length - 2;
    const kernel = c.attrs.ints('kernel_shape');
    if (kernel.length !== r || kernel.some((k) => !Number.isSafeInteger(k) || k < 1)) throw new FormatError(`${c.where}: kernel_shape ${JSON.stringify(kernel)} must be ${r} positive integers`);
    const ceilMode = c.attrs.int('ceil_mode', 0) === 1;
    const g = window(c, x.slice(2), kernel, { ceil: ceilMode });
    const countIncludePad = c.attrs.int('count_include_pad', 0) === 1;
    const params = { kernel: g.kernel, stride: g.stride, dilation: g.dilation, padding: g.padding, ceilMode };
    return {
      shape: [x[0]!, x[1]!, ...(r === 1 ? [g.out[1]] : g.out)],
      type: kind === 'max' ? 'maxpool2d' : 'avgpool2d',
      spec: { kernel: g.kernel, stride: g.stride },
      run: ([t]) => as2d(t!, (v) => (kind === 'max' ? ops.maxPool2d(v, params) : ops.avgPool2d(v, { ...params, countIncludePad }))),
    };
  };
}

/** GlobalAveragePool: [N, C, H, W] → [N, C, 1, 1] (our globalAvgPool, viewed back to rank 4). */
export function globalAveragePool(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0, [3, 4]);
  return {
    shape: [x[0]!, x[1]!, ...x.slice(2).map(() => 1)],
    type: 'gap',
    run: ([t]) =>
      as2d(t!, async (v) => using(await ops.globalAvgPool(v), async (y) => y.reshape([y.shape[0]!, y.shape[1]!, 1, 1]))),
  };
}

/** GlobalMaxPool: [N, C, H, W] → [N, C, 1, 1]; the gradient goes to each plane's first maximum. */
export function globalMaxPool(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0, [3, 4]);
  return {
    shape: [x[0]!, x[1]!, ...x.slice(2).map(() => 1)],
    type: 'globalmaxpool',
    run: ([t]): Promise<Tensor> => as2d(t!, async (v) => using(await ops.globalMaxPool(v), async (y) => y.reshape([y.shape[0]!, y.shape[1]!, 1, 1]))),
  };
}
