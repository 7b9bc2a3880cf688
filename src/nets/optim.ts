/**
 * Optimizers: SGD with momentum and Adam, with PyTorch's update rules, applied in place on the GPU
 * (shaders/optimizer.wgsl, one dispatch per parameter). State (velocity, first and second moments)
 * is kept per parameter tensor, created on its first update and freed by `dispose()`.
 */
import type { Gradients } from '../autodiff/tape.js';
import { linearWorkgroups, assertFinite } from '../kernels/common.js';
import { zeros } from '../kernels/elementwise.js';
import { ArgumentError, ShapeError } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import type { Tensor } from '../runtime/tensor.js';

/** What `train` needs from an optimizer. */
export interface Optimizer {
  /** Learning rate; may be changed between steps (schedules). */
  lr: number;
  /** Updates each parameter that has a gradient in `grads`, in place. Parameters without one are left alone. */
  step(params: readonly Tensor[], grads: Gradients): Promise<void>;
  /** Frees the optimizer's state buffers. */
  dispose(): void;
}

export interface SgdOptions {
  lr: number;
  /** Default 0.9. 0 means plain SGD (no velocity buffer). */
  momentum?: number;
  /** L2 penalty added to the gradient: g + weightDecay · p. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum. Default false. */
  nesterov?: boolean;
}

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** L2 penalty added to the gradient (Adam), or decoupled decay p ← p·(1 − lr·wd) (AdamW). Default 0. */
  weightDecay?: number;
  /** Decoupled weight decay (AdamW). Default false. */
  decoupledWeightDecay?: boolean;
}

interface ParamState {
  /** SGD: velocity. Adam: first moment m. */
  s1: Tensor | null;
  /** Adam: second moment v. */
  s2: Tensor | null;
  /** Updates applied so far (Adam's bias correction). */
  steps: number;
}

/** Shared bookkeeping: per-parameter state, the pairing of parameters with gradients. */
abstract class OptimizerBase implements Optimizer {
  abstract lr: number;
  protected readonly state = new Map<Tensor, ParamState>();
  private disposed = false;

  async step(params: readonly Tensor[], grads: Gradients): Promise<void> {
    if (this.disposed) throw new ArgumentError(`${this.constructor.name}: step() after dispose()`);
    assertFinite(this.constructor.name, { lr: this.lr });
    const pairs: [Tensor, Tensor][] = [];
    for (const p of params) {
      const g = grads.get(p);
      if (!g) continue;
      if (g.size !== p.size) throw new ShapeError(`${this.constructor.name}: gradient ${g.describe()} does not match parameter ${p.describe()}`);
      if (p.dtype !== 'float32') throw new ShapeError(`${this.constructor.name}: parameter ${p.describe()} must be float32`);
      pairs.push([p, g]);
    }
    for (const [p, g] of pairs) {
      let st = this.state.get(p);
      if (!st) {
        st = { s1: null, s2: null, steps: 0 };
        this.state.set(p, st);
      }
      st.steps++;
      await this.update(p, g, st);
    }
  }

  protected abstract update(p: Tensor, g: Tensor, st: ParamState): Promise<void>;

  /** A zeroed state buffer that survives the caller's gpu.scope. */
  protected async stateBuffer(p: Tensor): Promise<Tensor> {
    return p.gpu.keep(await zeros(p.gpu, p.shape));
  }

  /** Number of parameters with state. */
  get stateCount(): number {
    return this.state.size;
  }

  dispose(): void {
    this.disposed = true;
    for (const st of this.state.values()) {
      st.s1?.dispose();
      st.s2?.dispose();
    }
    this.state.clear();
  }
}

function uniforms(n: number, u: { lr: number; momentum?: number; l2?: number; nesterov?: boolean; beta1?: number; beta2?: number; eps?: number; stepSize?: number; bc2Sqrt?: number; decay?: number }): Uniforms {
  return new Uniforms()
    .u32(n)
    .f32(u.lr, u.momentum ?? 0, u.l2 ?? 0)
    .u32(u.nesterov ? 1 : 0)
    .f32(u.beta1 ?? 0, u.beta2 ?? 0, u.eps ?? 0, u.stepSize ?? 0, u.bc2Sqrt ?? 1, u.decay ?? 1);
}

/** Stochastic gradient descent with (optionally Nesterov) momentum, as torch.optim.SGD (no dampening). */
export class SGD extends OptimizerBase {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;

  constructor(options: SgdOptions) {
    super();
    const { lr, momentum = 0.9, weightDecay = 0, nesterov = false } = options ?? ({} as SgdOptions);
    assertFinite('SGD', { lr, momentum, weightDecay });
    if (lr <= 0) throw new ArgumentError(`SGD: lr must be > 0, got ${lr}`);
    if (momentum < 0 || momentum >= 1) throw new ArgumentError(`SGD: momentum must be in [0, 1), got ${momentum}`);
    if (weightDecay < 0) throw new ArgumentError(`SGD: weightDecay must be ≥ 0, got ${weightDecay}`);
    if (nesterov && momentum === 0) throw new ArgumentError('SGD: nesterov needs momentum > 0');
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
  }

  protected async update(p: Tensor, g: Tensor, st: ParamState): Promise<void> {
    const gpu = p.gpu;
    const useMomentum = this.momentum > 0;
    const kernel = await gpu.kernel('optimizer', { MOMENTUM: useMomentum }, 'sgd');
    if (useMomentum && !st.s1) st.s1 = await this.stateBuffer(p);
    gpu.dispatch(kernel, {
      uniforms: uniforms(p.size, { lr: this.lr, momentum: this.momentum, l2: this.weightDecay, nesterov: this.nesterov }),
      buffers: useMomentum ? [p, g, st.s1!] : [p, g],
      workgroups: linearWorkgroups(gpu, p.size, 256),
    });
  }
}

/** Adam (Kingma & Ba) with bias correction, as torch.optim.Adam; AdamW with decoupledWeightDecay. */
export class Adam extends OptimizerBase {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupledWeightDecay: boolean;

  constructor(options: AdamOptions = {}) {
    super();
    const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decoupledWeightDecay = false } = options;
    assertFinite('Adam', { lr, beta1, beta2, eps, weightDecay });
    if (lr <= 0) throw new ArgumentError(`Adam: lr must be > 0, got ${lr}`);
    if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) throw new ArgumentError(`Adam: beta1 and beta2 must be in [0, 1), got ${beta1}, ${beta2}`);
    if (eps <= 0) throw new ArgumentError(`Adam: eps must be > 0, got ${eps}`);
    if (weightDecay < 0) throw new ArgumentError(`Adam: weightDecay must be ≥ 0, got ${weightDecay}`);
    this.lr = lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.decoupledWeightDecay = decoupledWeightDecay;
  }

  protected async update(p: Tensor, g: Tensor, st: ParamState): Promise<void> {
    const gpu = p.gpu;
    const kernel = await gpu.kernel('optimizer', { MOMENTUM: false }, 'adam');
    if (!st.s1) st.s1 = await this.stateBuffer(p);
    if (!st.s2) st.s2 = await this.stateBuffer(p);
    const t = st.steps;
    const decoupled = this.decoupledWeightDecay;
    gpu.dispatch(kernel, {
      uniforms: uniforms(p.size, {
        lr: this.lr,
        l2: decoupled ? 0 : this.weightDecay,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        stepSize: this.lr / (1 - this.beta1 ** t),
        bc2Sqrt: Math.sqrt(1 - this.beta2 ** t),
        decay: decoupled ? 1 - this.lr * this.weightDecay : 1,
      }),
      buffers: [p, g, st.s1, st.s2],
      workgroups: linearWorkgroups(gpu, p.size, 256),
    });
  }
}
