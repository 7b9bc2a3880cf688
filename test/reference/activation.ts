/** Plain TypeScript references for the activation kernels and their backward rules. */
import type { Activation } from '../../src/kernels/common.js';

export function activationReference(x: ArrayLike<number>, act: Activation, alpha = 0.01): Float32Array {
  const f: Record<Activation, (v: number) => number> = {
    none: (v) => v,
    relu: (v) => Math.max(v, 0),
    relu6: (v) => Math.min(Math.max(v, 0), 6),
    leakyrelu: (v) => (v > 0 ? v : alpha * v),
    sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    tanh: (v) => Math.tanh(v),
  };
  return Float32Array.from(x, f[act]);
}

/** The backward rules written out by hand, from the gradient above g and the forward output y. */
export const BACKWARD_REFERENCE: Record<string, (g: number, y: number, alpha: number) => number> = {
  'relu/ordinary': (g, y) => (y > 0 ? g : 0),
  'relu/guided': (g, y) => (y > 0 && g > 0 ? g : 0),
  'relu/deconv': (g) => (g > 0 ? g : 0),
  'relu6/ordinary': (g, y) => (y > 0 && y < 6 ? g : 0),
  'relu6/guided': (g, y) => (y > 0 && y < 6 && g > 0 ? g : 0),
  'relu6/deconv': (g) => (g > 0 ? g : 0),
  'leakyrelu/ordinary': (g, y, alpha) => (y > 0 ? g : alpha * g),
  'sigmoid/ordinary': (g, y) => g * y * (1 - y),
  'tanh/ordinary': (g, y) => g * (1 - y * y),
};

export function backwardReference(key: string, g: ArrayLike<number>, y: ArrayLike<number>, alpha = 0.01): Float32Array {
  const f = BACKWARD_REFERENCE[key]!;
  return Float32Array.from(g, (gv, i) => f(gv, y[i]!, alpha));
}
