/**
 * Traces of a method run. A method called with `trace: true` (or 'tensors') records the trace of
 * every tape pass it makes (src/autodiff/trace.ts) and returns them next to its map:
 *
 *   const { result, trace } = await saliency.guidedBackprop(model, x, { target: 3, trace: true });
 *   console.log(formatTrace(trace.backward[0]!)); // the backward pass, step by step
 *   result.dispose();
 *   trace.dispose(); // frees the tensors kept with trace: 'tensors'
 *
 * While a traced method runs, the passes made on its model's Gpu are collected into its
 * MethodTrace (methods need not pass the option down through their helpers). As with tapes, do not
 * interleave two method runs on one Gpu.
 */
import type { Trace, TraceMode } from '../autodiff/trace.js';
import { ArgumentError } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import type { Tensor } from '../runtime/tensor.js';

/** The `trace` values that turn tracing on. */
export type TraceOn = Exclude<TraceMode, false>;

/** The passes one method run made, in order. */
export class MethodTrace {
  readonly passes: Trace[] = [];

  constructor(
    readonly method: string,
    readonly mode: TraceOn,
  ) {}

  /** The forward passes. */
  get forward(): Trace[] {
    return this.passes.filter((p) => p.pass === 'forward');
  }

  /** The backward passes. */
  get backward(): Trace[] {
    return this.passes.filter((p) => p.pass === 'backward');
  }

  /** @internal Adds a pass's trace under `label`. */
  add(trace: Trace | null, label: string): void {
    if (!trace) return;
    trace.label = label;
    this.passes.push(trace);
  }

  toJSON(): { method: string; passes: ReturnType<Trace['toJSON']>[] } {
    return { method: this.method, passes: this.passes.map((p) => p.toJSON()) };
  }

  /** Frees the tensors of every pass (trace: 'tensors'). Safe to call twice. */
  dispose(): void {
    for (const p of this.passes) p.dispose();
  }
}

/** What a method returns when asked for a trace: its map, and the trace next to it. */
export interface Traced<T = Tensor> {
  result: T;
  trace: MethodTrace;
}

/** Per Gpu, the traces collecting passes, innermost last (null: tracing suspended by `untraced`). */
const active = new WeakMap<Gpu, (MethodTrace | null)[]>();

/** The method trace collecting passes made on `gpu` now, or null. */
export function activeMethodTrace(gpu: Gpu): MethodTrace | null {
  const stack = active.get(gpu);
  return stack?.length ? stack[stack.length - 1]! : null;
}

/**
 * Runs `fn` with no method trace collecting its passes: for work a method does besides its result,
 * such as measuring the memory of one sample before choosing batch sizes.
 */
export async function untraced<T>(gpu: Gpu, fn: () => Promise<T>): Promise<T> {
  let stack = active.get(gpu);
  if (!stack) active.set(gpu, (stack = []));
  stack.push(null);
  try {
    return await fn();
  } finally {
    const i = stack.lastIndexOf(null);
    if (i >= 0) stack.splice(i, 1);
  }
}

/**
 * Runs `fn` (one method) and, when `mode` turns tracing on, returns its result with the trace of
 * every pass it made; on an error, the trace is freed with everything else.
 */
export async function withMethodTrace<T>(gpu: Gpu, method: string, mode: TraceMode | undefined, fn: () => Promise<T>): Promise<T | Traced<T>> {
  if (mode === undefined || mode === false) return fn();
  if (mode !== true && mode !== 'tensors') throw new ArgumentError(`${method}: trace must be true, false or 'tensors', got ${JSON.stringify(mode)}`);
  const trace = new MethodTrace(method, mode);
  let stack = active.get(gpu);
  if (!stack) active.set(gpu, (stack = []));
  stack.push(trace);
  try {
    return { result: await fn(), trace };
  } catch (e) {
    trace.dispose();
    throw e;
  } finally {
    const i = stack.lastIndexOf(trace);
    if (i >= 0) stack.splice(i, 1);
  }
}
