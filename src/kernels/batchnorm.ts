/**
 * Batch normalisation with frozen statistics (ONNX BatchNormalization, inference mode) and its
 * gradients; see shaders/batchnorm.wgsl. One dispatch forward, one for the input gradient, one for
 * the four parameter gradients together.
 */
import { ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms, type Gpu } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFinite, assertFloat, linearWorkgroups } from './common.js';
import { slice } from './shape.js';

/** The per-channel parameters of a batch normalisation, each [C]. */
export interface BatchNormParams {
  scale: Tensor;
  bias: Tensor;
  mean: Tensor;
  variance: Tensor;
  /** Added to the variance. ONNX's default 1e-5. */
  epsilon?: number;
}

function geometry(op: string, xShape: readonly number[], p: Record<string, Tensor>, epsilon: number) {
  if (xShape.length < 2) throw new ShapeError(`${op}: x must be [N, C, …], got ${formatShape(xShape)}`);
  const channels = xShape[1]!;
  for (const [name, t] of Object.entries(p)) {
    assertFloat(op, name, t);
    if (t.rank !== 1 || t.shape[0] !== channels) {
      throw new ShapeError(`${op}: ${name} must be [C] = [${channels}] for x ${formatShape(xShape)}, got ${formatShape(t.shape)}`);
    }
  }
  assertFinite(op, { epsilon });
  if (epsilon < 0) throw new ShapeError(`${op}: epsilon must be ≥ 0, got ${epsilon}`);
  const inner = xShape.slice(2).reduce((a, b) => a * b, 1);
  const n = xShape.reduce((a, b) => a * b, 1);
  return { channels, inner, batch: xShape[0]!, n };
}

function uniforms(g: { n: number; channels: number; inner: number; batch: number }, epsilon: number): Uniforms {
  return new Uniforms().u32(g.n, g.channels, g.inner, g.batch).f32(epsilon);
}

/** y = (x − mean) · scale / sqrt(variance + epsilon) + bias, per channel (axis 1) of x [N, C, …]. */
export async function batchNorm(x: Tensor, params: BatchNormParams): Promise<Tensor> {
  const op = 'batchNorm';
  assertFloat(op, 'x', x);
  const { scale, bias, mean, variance, epsilon = 1e-5 } = params;
  const g = geometry(op, x.shape, { scale, bias, mean, variance }, epsilon);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('batchnorm', {}, 'forward');
  const y = empty(gpu, x.shape);
  gpu.dispatch(kernel, { uniforms: uniforms(g, epsilon), buffers: [x, scale, variance, y, mean, bias], workgroups: linearWorkgroups(gpu, g.n, 256) });
  return y;
}

/** dx = dy · scale / sqrt(variance + epsilon) per channel. */
export async function batchNormInputGrad(dy: Tensor, params: Omit<BatchNormParams, 'bias' | 'mean'>): Promise<Tensor> {
  const op = 'batchNorm input gradient';
  assertFloat(op, 'dy', dy);
  const { scale, variance, epsilon = 1e-5 } = params;
  const g = geometry(op, dy.shape, { scale, variance }, epsilon);
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('batchnorm', {}, 'input_grad');
  const dx = empty(gpu, dy.shape);
  gpu.dispatch(kernel, { uniforms: uniforms(g, epsilon), buffers: [dy, scale, variance, dx], workgroups: linearWorkgroups(gpu, g.n, 256) });
  return dx;
}

/** The gradients of scale, bias, mean and variance, each [C], from the forward's x and dy. */
export async function batchNormParamGrads(
  dy: Tensor,
  x: Tensor,
  params: Omit<BatchNormParams, 'bias'>,
): Promise<{ scale: Tensor; bias: Tensor; mean: Tensor; variance: Tensor }> {
  const op = 'batchNorm parameter gradients';
  assertFloat(op, 'dy', dy);
  assertFloat(op, 'x', x);
  if (dy.size !== x.size) throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} and x ${formatShape(x.shape)} must have the same size`);
  const { scale, mean, variance, epsilon = 1e-5 } = params;
  const g = geometry(op, x.shape, { scale, mean, variance }, epsilon);
  const gpu: Gpu = x.gpu;
  const kernel = await gpu.kernel('batchnorm', {}, 'param_grads');
  const all = empty(gpu, [4, g.channels]);
  try {
    gpu.dispatch(kernel, {
      uniforms: uniforms(g, epsilon),
      buffers: [dy, scale, variance, all, mean, x],
      workgroups: linearWorkgroups(gpu, g.channels, 1),
    });
    const rows: Tensor[] = [];
    try {
      for (let k = 0; k < 4; k++) {
        const r = await slice(all, [k, 0], [1, g.channels]);
        rows.push(r);
      }
    } catch (e) {
      for (const r of rows) r.dispose();
      throw e;
    }
    const [s, b, m, v] = rows.map((r) => {
      const view = r.reshape([g.channels]);
      r.dispose();
      return view;
    }) as [Tensor, Tensor, Tensor, Tensor];
    return { scale: s, bias: b, mean: m, variance: v };
  } finally {
    all.dispose();
  }
}
