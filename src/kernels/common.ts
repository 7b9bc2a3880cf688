/** Helpers shared by the kernel wrappers. */
import { DisposedError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import type { Tensor } from '../runtime/tensor.js';

/**
 * Workgroup counts for a 1-D job of `n` invocations with `workgroupSize` threads each, folded into
 * two dimensions when it exceeds the 65,535 per-dimension limit. Shaders rebuild the flat index as
 * `gid.x + gid.y * (num_workgroups.x * WG)`.
 */
export function linearWorkgroups(gpu: Gpu, n: number, workgroupSize: number): [number, number] {
  const groups = Math.ceil(n / workgroupSize);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

export function assertRank(op: string, name: string, t: Tensor, rank: number): void {
  if (t.rank !== rank) {
    throw new ShapeError(`${op}: ${name} must have rank ${rank}, got ${formatShape(t.shape)}`);
  }
}

export function assertSameShape(op: string, a: Tensor, b: Tensor, names = ['a', 'b']): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: ${names[0]} ${formatShape(a.shape)} and ${names[1]} ${formatShape(b.shape)} must have the same shape`);
  }
}

/** Checks that t is a live float32 tensor (wrappers call it before allocating their output). */
export function assertFloat(op: string, name: string, t: Tensor): void {
  if (t.isDisposed) throw new DisposedError(`${op}: ${name} (${t.describe()}) was used after it was disposed`);
  if (t.dtype !== 'float32') throw new ShapeError(`${op}: ${name} must be float32, got ${t.dtype}`);
}

/** Throws unless every value is a finite number (NaN and ±Infinity make kernels produce garbage). */
export function assertFinite(op: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ShapeError(`${op}: ${k} must be a finite number, got ${v}`);
    }
  }
}

/** Activations that kernels can apply to their output (fused) and that have backward rules. */
export type Activation = 'none' | 'relu' | 'relu6' | 'leakyrelu' | 'sigmoid' | 'tanh';

export const ACTIVATIONS: readonly Activation[] = ['none', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'tanh'];

/**
 * WGSL expression of each activation in `v` (the pre-activation) and `alpha` (leaky slope), for
 * shaders that declare `fn activate(v: f32, alpha: f32) -> f32 { return ${ACTIVATION}; }`.
 */
export const ACTIVATION_WGSL: Record<Activation, string> = {
  none: 'v',
  relu: 'max(v, 0.0)',
  relu6: 'clamp(v, 0.0, 6.0)',
  leakyrelu: 'select(alpha * v, v, v > 0.0)',
  sigmoid: '1.0 / (1.0 + exp(-v))',
  tanh: 'tanh(v)',
};

/**
 * TF-style 'SAME' padding [top, bottom, left, right] for an input of height×width: the output is
 * ceil(input / stride), and the odd pixel of padding goes at the bottom/right.
 */
export function samePadding(
  input: [number, number],
  kernel: number | [number, number],
  stride: number | [number, number] = 1,
  dilation: number | [number, number] = 1,
): [number, number, number, number] {
  const k = typeof kernel === 'number' ? [kernel, kernel] : kernel;
  const s = typeof stride === 'number' ? [stride, stride] : stride;
  const d = typeof dilation === 'number' ? [dilation, dilation] : dilation;
  const out: number[] = [];
  for (let i = 0; i < 2; i++) {
    const size = input[i]!;
    const extent = (k[i]! - 1) * d[i]! + 1;
    const total = Math.max(0, (Math.ceil(size / s[i]!) - 1) * s[i]! + extent - size);
    out.push(Math.floor(total / 2), total - Math.floor(total / 2));
  }
  return out as [number, number, number, number];
}
