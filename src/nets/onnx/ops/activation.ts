/**
 * ONNX activations: Relu, LeakyRelu, Sigmoid, Tanh (our activation op, so that guided backprop and
 * DeconvNet change every ReLU, also one fused into the conv or Gemm before it), Clip (0 and 6:
 * ReLU6; 0 and no upper bound: ReLU; other bounds: a plain clip), HardSigmoid, HardSwish, PRelu
 * (not ReLUs: their ordinary gradient under every method, as PyTorch's hooks on ReLU modules
 * leave them), Softmax and LogSoftmax (opset < 13: over the input flattened from `axis` on;
 * opset 13: one axis).
 */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { FormatError, formatShape } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { OpResult, Prepared } from '../../graph/executor.js';
import { padRank } from '../../graph/host.js';
import { using } from '../../graph/ops.js';
import { optionalConst, runtimeInput, constInput, type OnnxContext, type OnnxOpBuilder } from './context.js';

/** A step running one of our activations (a conv or Gemm step before it may fuse it). */
export function activationStep(x: number[], act: Exclude<Activation, 'none'>, alpha = 0.01): Prepared {
  return { shape: x, type: act, run: ([t]) => ops.activation(t!, act, alpha), activation: { act, alpha } };
}

export function activation(act: Exclude<Activation, 'none'>): OnnxOpBuilder {
  return (c) => activationStep(runtimeInput(c, 0), act, act === 'leakyrelu' ? c.attrs.float('alpha', 0.01) : 0.01);
}

/** Clip: bounds from attributes (opset < 11) or constant inputs. */
export function clip(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0);
  let lo = -Infinity;
  let hi = Infinity;
  if (c.opset < 11) {
    lo = c.attrs.float('min', -Infinity);
    hi = c.attrs.float('max', Infinity);
  } else {
    const a = optionalConst(c, 1, 'min');
    const b = optionalConst(c, 2, 'max');
    if (a) lo = a.data[0]!;
    if (b) hi = b.data[0]!;
  }
  if (Number.isNaN(lo) || Number.isNaN(hi)) throw new FormatError(`${c.where}: the bounds must be numbers`);
  // Bounds beyond float32's range (the exporter's ±3.4e38 for "none") are open sides.
  if (lo <= -3.4e38) lo = -Infinity;
  if (hi >= 3.4e38) hi = Infinity;
  if (lo === 0 && hi === 6) return activationStep(x, 'relu6');
  if (lo === 0 && hi === Infinity) return activationStep(x, 'relu');
  return { shape: x, type: 'clip', spec: { min: lo, max: hi }, run: ([t]) => ops.clip(t!, lo, hi) };
}

export function hardSigmoid(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0);
  const alpha = c.attrs.float('alpha', 0.2);
  const beta = c.attrs.float('beta', 0.5);
  return { shape: x, type: 'hardsigmoid', spec: { alpha, beta }, run: ([t]) => ops.hardSigmoid(t!, alpha, beta) };
}

export function hardSwish(c: OnnxContext): OpResult {
  return { shape: runtimeInput(c, 0), type: 'hardswish', run: ([t]) => ops.hardSwish(t!) };
}

/** PRelu: the slope broadcasts against the input (unidirectionally), e.g. [C, 1, 1] per channel. */
export function prelu(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0);
  const s = constInput(c, 1, 'slope');
  if (s.shape.length > x.length || s.shape.some((d, i) => d !== 1 && d !== x[x.length - s.shape.length + i])) {
    throw new FormatError(`${c.where}: the slope ${formatShape(s.shape)} does not broadcast to the input ${formatShape(x)}`);
  }
  const slope = c.upload(padRank(s, x.length));
  return { shape: x, type: 'prelu', params: { slope }, run: ([t], w) => ops.prelu(t!, w(slope)) };
}

export function softmax(log: boolean): OnnxOpBuilder {
  return (c) => {
    const x = runtimeInput(c, 0);
    const rank = x.length;
    let axis = c.attrs.int('axis', c.opset < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) throw new FormatError(`${c.where}: axis ${axis} is not valid for rank ${rank}`);
    const f = (t: Tensor, a: number) => (log ? ops.logSoftmax(t, a) : ops.softmax(t, a));
    const type = log ? 'logsoftmax' : 'softmax';
    if (c.opset >= 13 || axis === rank - 1) return { shape: x, type, run: ([t]) => f(t!, axis) };
    // Before opset 13: softmax over everything from `axis` on, as one axis.
    if (axis === 0) throw new FormatError(`${c.where}: a softmax over the batch axis (axis 0) is not supported`);
    return {
      shape: x,
      type,
      run: async ([t]) => {
        const outer = t!.shape.slice(0, axis).reduce((p, q) => p * q, 1);
        const flat = t!.reshape([outer, t!.size / outer]);
        const y = await using(flat, (v) => f(v, 1));
        return using(y, async (v) => v.reshape(t!.shape));
      },
    };
  };
}
