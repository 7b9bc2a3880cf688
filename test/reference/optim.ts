/** Plain TypeScript references (float64) for the optimizers and the cross-entropy loss (PyTorch's formulas). */

export interface SgdRef {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

/** Applies SGD steps with the given gradients (one array per step); returns the parameter after each step. */
export function sgdReference(p0: ArrayLike<number>, grads: ArrayLike<number>[], o: SgdRef): Float64Array[] {
  const p = Float64Array.from(p0);
  const v = new Float64Array(p.length);
  const out: Float64Array[] = [];
  grads.forEach((grad, step) => {
    for (let i = 0; i < p.length; i++) {
      let g = grad[i]! + o.weightDecay * p[i]!;
      if (o.momentum > 0) {
        v[i] = step === 0 ? g : o.momentum * v[i]! + g; // torch: the buffer starts as a copy of g
        g = o.nesterov ? g + o.momentum * v[i]! : v[i]!;
      }
      p[i] = p[i]! - o.lr * g;
    }
    out.push(Float64Array.from(p));
  });
  return out;
}

export interface AdamRef {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

export function adamReference(p0: ArrayLike<number>, grads: ArrayLike<number>[], o: AdamRef): Float64Array[] {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const out: Float64Array[] = [];
  grads.forEach((grad, step) => {
    const t = step + 1;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i]!;
      if (o.decoupled) p[i] = p[i]! * (1 - o.lr * o.weightDecay);
      else g += o.weightDecay * p[i]!;
      m[i] = o.beta1 * m[i]! + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i]! + (1 - o.beta2) * g * g;
      const mHat = m[i]! / (1 - o.beta1 ** t);
      const vHat = v[i]! / (1 - o.beta2 ** t);
      p[i] = p[i]! - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
    out.push(Float64Array.from(p));
  });
  return out;
}

/** Mean cross-entropy of logits [n, k] and its gradient (softmax − onehot) / n. */
export function crossEntropyReference(logits: ArrayLike<number>, labels: ArrayLike<number>, n: number, k: number): { loss: number; grad: Float64Array } {
  let loss = 0;
  const grad = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[r * k + j]!);
    let z = 0;
    for (let j = 0; j < k; j++) z += Math.exp(logits[r * k + j]! - max);
    const lse = max + Math.log(z);
    loss -= logits[r * k + labels[r]!]! - lse;
    for (let j = 0; j < k; j++) grad[r * k + j] = (Math.exp(logits[r * k + j]! - lse) - (j === labels[r] ? 1 : 0)) / n;
  }
  return { loss: loss / n, grad };
}
