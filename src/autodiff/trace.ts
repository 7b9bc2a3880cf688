/**
 * The step-through trace of a tape: one entry per tape step, of the forward pass
 * (`tape.run(fn, { trace: true })`) or of a backward pass (`tape.backward(y, { trace: true })`).
 * An entry tells the op and its layer, the shapes, the kernels it dispatched with their workgroup
 * counts, the backward rule used (ReLU: ordinary / guided / deconv, fused or not; max pooling:
 * switches), and statistics of what flowed: for the forward pass the output, for a backward pass
 * the gradient coming in (of the op's output) and those going out (one per input).
 *
 * With `trace: 'tensors'` an entry also keeps those tensors; they stay alive until the trace is
 * disposed (`trace.dispose()`, or with the Gradients or Tape that hold it).
 *
 * Statistics are computed on the CPU after reading each tensor back: tracing is for looking
 * inside, not for speed.
 */
import type { ActivationName } from '../kernels/activation.js';
import { formatShape } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';

/** `trace` option: false (default), true (statistics), or 'tensors' (statistics and the tensors). */
export type TraceMode = boolean | 'tensors';

/** Summary of one tensor's values. */
export interface TensorStats {
  min: number;
  max: number;
  /** Mean of |v|. */
  meanAbs: number;
  /** Share of values that are exactly 0, in [0, 1]. */
  zeros: number;
  /** Number of values. */
  size: number;
}

/** A kernel dispatched by a step. */
export interface TraceKernel {
  /** The shader, and its entry point where that is not `main` (e.g. 'activation_backward.relu_guided'). */
  name: string;
  workgroups: [number, number, number];
}

/** A backward rule a step applied. */
export type TraceRule =
  | {
      kind: 'activation';
      activation: ActivationName;
      /** The rule's name (an entry point of shaders/activation_backward.wgsl), or 'custom' for a function. */
      rule: string;
      /** True when the activation ran inside the op (conv+relu, linear+relu), not as an op of its own. */
      fused: boolean;
      /** The gradient right after the rule: its share of zeros is where vanilla and guided part. */
      after: TensorStats;
      /** With trace: 'tensors': the activation's forward output y, and the gradient after the rule. */
      tensors?: { y: Tensor; after: Tensor };
    }
  | {
      /** Max-pool's backward: unpooling through the switches recorded in the forward pass (also DeconvNet's rule). */
      kind: 'switches';
      rule: 'switches';
      /**
       * With trace: 'tensors': the switches (int32, the pool's output shape): for each output, the
       * flat index iy·W + ix in its input plane of the window's maximum (−1 for a window without input).
       */
      tensors?: { switches: Tensor };
    }
  | {
      /** The op's whole backward rule was replaced for this call (`rules.ops`). */
      kind: 'override';
      rule: 'custom';
    };

export interface TraceEntry {
  /** 'forward' or 'backward'. */
  pass: 'forward' | 'backward';
  /** Position of the op on the tape (forward order); a forward entry and the backward entry of the same op share it. null for an op the tape did not record (no tracked input). */
  step: number | null;
  op: string;
  /** The layer whose output this op computed (or helped compute), as the model named it; null outside layers. */
  layer: string | null;
  /** Layers that ran fused into this one (['conv1'] for conv1 + relu1 in one kernel). */
  fusedLayers: string[];
  inputShapes: (readonly number[] | null)[];
  outputShape: readonly number[];
  /** The kernels dispatched: for a forward entry, since the previous entry. */
  kernels: TraceKernel[];
  /** The backward rules applied (backward entries; empty where the op's ordinary rule ran without a named rule). */
  rules: TraceRule[];
  /** Forward: statistics of the op's output. */
  output?: TensorStats;
  /** Backward: statistics of the gradient coming in (of the op's output, from the layers above). */
  incoming?: TensorStats;
  /** Backward: statistics of the gradient going out to each input (null where none was computed). */
  outgoing?: (TensorStats | null)[];
  /** With trace: 'tensors'. Forward: `output`; backward: `incoming` and `outgoing`. */
  tensors?: { output?: Tensor; incoming?: Tensor; outgoing?: (Tensor | null)[] };
}

/** Statistics of `values`. An empty array gives zeros everywhere. */
export function tensorStats(values: ArrayLike<number>): TensorStats {
  const n = values.length;
  if (n === 0) return { min: 0, max: 0, meanAbs: 0, zeros: 0, size: 0 };
  let min = Infinity;
  let max = -Infinity;
  let abs = 0;
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    abs += Math.abs(v);
    if (v === 0) zeros++;
  }
  return { min, max, meanAbs: abs / n, zeros: zeros / n, size: n };
}

/** Reads `t` back and summarises it. */
export async function statsOf(t: Tensor): Promise<TensorStats> {
  return tensorStats(await t.read());
}

/** The entries of one pass, with the tensors they keep (trace: 'tensors'). */
export class Trace {
  readonly entries: TraceEntry[] = [];
  /** Tensors this trace retains (released by dispose). */
  private readonly held: Tensor[] = [];
  private disposed = false;

  constructor(
    readonly pass: 'forward' | 'backward',
    readonly mode: Exclude<TraceMode, false>,
    /** What the pass was, for tables and JSON (e.g. 'backward (guided)'). */
    public label: string = pass,
  ) {}

  /** True when the trace keeps tensors (`trace: 'tensors'`). */
  get keepsTensors(): boolean {
    return this.mode === 'tensors';
  }

  /** @internal Retains `t` until the trace is disposed, and returns it. */
  hold(t: Tensor): Tensor {
    this.held.push(t.retain());
    return t;
  }

  /** The entries whose layer is `layer` (including layers that ran fused into another). */
  forLayer(layer: string): TraceEntry[] {
    return this.entries.filter((e) => e.layer === layer || e.fusedLayers.includes(layer));
  }

  /** The entries without tensors, for JSON. */
  toJSON(): { pass: string; label: string; entries: Omit<TraceEntry, 'tensors'>[] } {
    return {
      pass: this.pass,
      label: this.label,
      entries: this.entries.map((e) => {
        const { tensors: _tensors, rules, ...rest } = e;
        return { ...rest, rules: rules.map((r) => ('tensors' in r ? { ...r, tensors: undefined } : r)) };
      }),
    };
  }

  /** Releases the tensors kept with trace: 'tensors'. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.held) t.release();
    this.held.length = 0;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}

/** 'relu guided (fused)', 'switches', … : the rules of an entry in words. */
export function describeRules(e: TraceEntry): string {
  return e.rules.map((r) => (r.kind === 'activation' ? `${r.activation} ${r.rule}${r.fused ? ' (fused)' : ''}` : r.rule)).join(', ');
}

/** The layer of an entry in words: 'conv1+relu1' when conv1 ran fused into relu1. */
export function describeLayer(e: TraceEntry): string {
  return [...e.fusedLayers, ...(e.layer !== null ? [e.layer] : [])].join('+') || '—';
}

/**
 * The share of zeros in the gradient right after each activation rule of a backward entry (where
 * the entry applied one), else in the gradient going out to its first input.
 */
export function zerosAfter(e: TraceEntry): number | null {
  const rule = e.rules.find((r) => r.kind === 'activation');
  if (rule && rule.kind === 'activation') return rule.after.zeros;
  return e.outgoing?.find((s) => s !== null)?.zeros ?? null;
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
const num = (v: number | undefined) => (v === undefined ? '—' : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(4));

/** Aligns rows of cells into columns (the first row is the header). */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/**
 * A trace as a text table, one row per entry. Forward columns: the output's statistics. Backward
 * columns: the gradient coming in (min, max, mean |g|, zeros), and 'zeros after': the share of
 * zeros right after the step's activation rule where it has one, else in the gradient going out.
 */
export function formatTrace(trace: Trace): string {
  const header =
    trace.pass === 'forward'
      ? ['#', 'op', 'layer', 'in', 'out', 'kernels', 'min', 'max', 'mean|y|', 'zeros']
      : ['#', 'op', 'layer', 'rule', 'out shape', 'kernels', 'g in min', 'g in max', 'mean|g in|', 'zeros in', 'zeros after'];
  const rows = trace.entries.map((e, i) => {
    const kernels = e.kernels.map((k) => `${k.name}[${k.workgroups.filter((w, j) => j === 0 || w > 1).join('×')}]`).join(' ') || '—';
    if (trace.pass === 'forward') {
      const ins = e.inputShapes.map((s) => (s ? formatShape(s) : '—')).join(' ');
      const o = e.output;
      return [String(i), e.op, describeLayer(e), ins, formatShape(e.outputShape), kernels, num(o?.min), num(o?.max), num(o?.meanAbs), pct(o?.zeros)];
    }
    const g = e.incoming;
    return [String(i), e.op, describeLayer(e), describeRules(e) || '—', formatShape(e.outputShape), kernels, num(g?.min), num(g?.max), num(g?.meanAbs), pct(g?.zeros), pct(zerosAfter(e))];
  });
  return `${trace.label}:\n${formatTable([header, ...rows])}`;
}

/**
 * Backward traces of the same network side by side (e.g. the vanilla gradient and guided backprop
 * on one image): one row per step that applied an activation rule, and for each trace the share of
 * zeros in the gradient reaching the activation → right after its rule. Where those shares part is
 * where the methods differ.
 */
export function formatTraceComparison(traces: readonly { label: string; trace: Trace }[]): string {
  const activationRule = (e: TraceEntry | undefined) => e?.rules.find((r): r is Extract<TraceRule, { kind: 'activation' }> => r.kind === 'activation');
  const withRules = traces.map(({ trace }) => trace.entries.filter((e) => activationRule(e)));
  const longest = withRules.reduce((a, b) => (b.length > a.length ? b : a), [] as TraceEntry[]);
  const rulesOf = withRules.map((list) => [...new Set(list.map((e) => activationRule(e)!.rule))].join('/'));
  const header = ['layer', 'activation', ...traces.map(({ label }, i) => `${label} (${rulesOf[i]})`)];
  const rows = longest.map((e, i) => {
    const rule = activationRule(e)!;
    return [
      describeLayer(e),
      `${rule.activation}${rule.fused ? ' (fused)' : ''}`,
      ...withRules.map((list) => {
        const f = list[i];
        return f ? `${pct(f.incoming?.zeros)} → ${pct(activationRule(f)!.after.zeros)}` : '—';
      }),
    ];
  });
  return formatTable([header, ...rows]);
}
