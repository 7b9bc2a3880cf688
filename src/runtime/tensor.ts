/**
 * Tensor: an n-dimensional array of float32 (or int32) values in a pooled GPU buffer.
 * Images are NCHW. Tensors are freed deterministically: `dispose()`, or a `gpu.scope(...)`.
 */
import { DisposedError, ShapeError, formatShape } from './errors.js';
import type { Disposable, Gpu } from './gpu.js';

export type DType = 'float32' | 'int32';

/** A pooled GPU buffer shared by a tensor and its reshaped views. */
class Storage {
  refs = 1;
  constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
  ) {}
  release(): void {
    if (--this.refs === 0) this.gpu.pool.release(this.buffer);
  }
}

export const STORAGE_USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

let nextId = 1;

/** The part of a Tape that `reshape` uses (the tape module depends on this one, not the reverse). */
interface ViewRecorder {
  record(op: string, inputs: readonly Tensor[], output: Tensor, saved: Record<string, unknown>): void;
}

export class Tensor implements Disposable {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  /** Marks a parameter (or input) whose gradient the autodiff tape should compute. */
  requiresGrad = false;
  /** The creator's reference (released by dispose()). */
  private owned = true;
  /** Holders added by retain(). */
  private holders = 0;
  private storage: Storage | null;

  /** Use `tensor()`, `empty()` or `zeros()` instead. */
  constructor(
    readonly gpu: Gpu,
    storage: Storage,
    shape: readonly number[],
    readonly dtype: DType = 'float32',
  ) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    gpu.track(this);
  }

  /** The GPU buffer holding the data (possibly larger than the tensor). */
  get buffer(): GPUBuffer {
    if (!this.storage) throw new DisposedError(`${this.describe()} was used after it was disposed`);
    return this.storage.buffer;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** True once the buffer is freed: the creator disposed it and no holder retains it. */
  get isDisposed(): boolean {
    return this.storage === null;
  }

  /** Copies the values to the CPU. Submits any pending GPU work first. */
  async read(): Promise<Float32Array> {
    const bytes = await this.gpu.readBuffer(this.buffer, this.size * 4);
    return this.dtype === 'float32' ? new Float32Array(bytes) : Float32Array.from(new Int32Array(bytes));
  }

  /** Copies an int32 tensor's values to the CPU. */
  async readInt32(): Promise<Int32Array> {
    if (this.dtype !== 'int32') throw new ShapeError(`${this.describe()} is ${this.dtype}, not int32`);
    return new Int32Array(await this.gpu.readBuffer(this.buffer, this.size * 4));
  }

  /** A view with a new shape over the same data (no copy). One dimension may be -1. */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, this.size, this.shape);
    const storage = this.storage;
    if (!storage) throw new DisposedError(`${this.describe()} was used after it was disposed`);
    storage.refs++;
    const view = new Tensor(this.gpu, storage, resolved, this.dtype);
    // A view of a tensor the active tape tracks stays connected to the graph.
    const tape = this.gpu.tapeStack[this.gpu.tapeStack.length - 1] as ViewRecorder | null | undefined;
    tape?.record('reshape', [this], view, { shape: this.shape });
    return view;
  }

  /**
   * Adds a holder: internal owners (the tape, hooks) keep a tensor alive after its creator disposes
   * it. Each retain() is undone by one release(); the buffer returns to the pool when the creator
   * has disposed the tensor and every holder has released it.
   */
  retain(): this {
    if (!this.storage) throw new DisposedError(`${this.describe()} was used after it was disposed`);
    this.holders++;
    return this;
  }

  /** Undoes one retain(). */
  release(): void {
    if (this.holders <= 0) return;
    this.holders--;
    this.freeIfUnused();
  }

  /** Releases the creator's reference. Safe to call twice. */
  dispose(): void {
    if (!this.owned) return;
    this.owned = false;
    this.freeIfUnused();
  }

  private freeIfUnused(): void {
    if (this.owned || this.holders > 0 || !this.storage) return;
    this.storage.release();
    this.storage = null;
    this.gpu.untrack(this);
  }

  describe(): string {
    return `Tensor#${this.id} ${formatShape(this.shape)}${this.dtype === 'float32' ? '' : ' ' + this.dtype}`;
  }

  toString(): string {
    return this.describe();
  }
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(gpu: Gpu, shape: readonly number[]): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new ShapeError(`invalid shape ${Array.isArray(shape) ? formatShape(shape) : JSON.stringify(shape)}: dimensions must be positive integers`);
  }
  const bytes = shapeSize(shape) * 4;
  const max = gpu.limits.maxStorageBufferBindingSize;
  if (bytes > max) {
    throw new ShapeError(
      `a tensor of shape ${formatShape(shape)} needs ${(bytes / 2 ** 20).toFixed(1)} MiB, more than this adapter's ` +
        `largest storage binding (${(max / 2 ** 20).toFixed(0)} MiB); use a smaller batch or image`,
    );
  }
}

function resolveShape(shape: readonly number[], size: number, from: readonly number[]): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const rest = shapeSize(out.filter((_, i) => i !== free));
    out[free] = rest > 0 ? size / rest : 0;
  }
  if (out.some((d) => !Number.isInteger(d) || d <= 0) || shapeSize(out) !== size) {
    throw new ShapeError(`cannot reshape ${formatShape(from)} (${size} values) to ${formatShape(shape)}`);
  }
  return out;
}

/** A tensor with uninitialised contents. */
export function empty(gpu: Gpu, shape: readonly number[], dtype: DType = 'float32'): Tensor {
  checkShape(gpu, shape);
  const buffer = gpu.pool.acquire(shapeSize(shape) * 4, STORAGE_USAGE());
  return new Tensor(gpu, new Storage(gpu, buffer), shape, dtype);
}

/** Uploads `data` as a tensor of the given shape. */
export function tensor(gpu: Gpu, data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): Tensor {
  checkShape(gpu, shape);
  const n = shapeSize(shape);
  if (data.length !== n) {
    throw new ShapeError(`tensor(): ${data.length} values do not fill shape ${formatShape(shape)} (${n} values)`);
  }
  const typed =
    dtype === 'float32'
      ? data instanceof Float32Array
        ? data
        : Float32Array.from(data)
      : data instanceof Int32Array
        ? data
        : Int32Array.from(data);
  const t = empty(gpu, shape, dtype);
  gpu.writeBuffer(t.buffer, typed);
  return t;
}
