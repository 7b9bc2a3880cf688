/**
 * Seeded random tensors generated on the GPU (shaders/random.wgsl). Value i of a stream is a pure
 * function of (seed, offset + i): the same seed reproduces the same tensor, and a long stream can
 * be produced in slices (`offset`) that join up exactly.
 */
import { ArgumentError } from '../runtime/errors.js';
import { Uniforms, type Gpu } from '../runtime/gpu.js';
import { empty, shapeSize, type Tensor } from '../runtime/tensor.js';
import { assertFinite, linearWorkgroups } from './common.js';

export interface RandomOptions {
  seed: number;
  /** Index of the first value in the seed's stream (default 0). */
  offset?: number;
}

async function random(gpu: Gpu, shape: readonly number[], normal: boolean, a: number, b: number, o: RandomOptions): Promise<Tensor> {
  const op = normal ? 'randomNormal' : 'randomUniform';
  const offset = o.offset ?? 0;
  assertFinite(op, { a, b, seed: o.seed, offset });
  if (!Number.isInteger(o.seed) || !Number.isInteger(offset) || offset < 0) {
    throw new ArgumentError(`${op}: seed and offset must be integers (offset ≥ 0), got seed ${o.seed}, offset ${offset}`);
  }
  if (offset + shapeSize(shape) > 2 ** 31) throw new ArgumentError(`${op}: offset + size exceeds the stream length (2^31)`);
  const kernel = await gpu.kernel('random', { NORMAL: normal });
  const out = empty(gpu, shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(out.size, o.seed >>> 0, offset).f32(a, b),
    buffers: [out],
    workgroups: linearWorkgroups(gpu, out.size, 256),
  });
  return out;
}

/** Normal values N(mean, std²). */
export function randomNormal(gpu: Gpu, shape: readonly number[], options: RandomOptions & { mean?: number; std?: number }): Promise<Tensor> {
  return random(gpu, shape, true, options.mean ?? 0, options.std ?? 1, options);
}

/** Uniform values in [lo, hi). */
export function randomUniform(gpu: Gpu, shape: readonly number[], options: RandomOptions & { lo?: number; hi?: number }): Promise<Tensor> {
  return random(gpu, shape, false, options.lo ?? 0, options.hi ?? 1, options);
}
