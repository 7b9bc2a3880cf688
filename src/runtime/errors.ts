/** Errors raised by webgpu-saliency. Each one says what went wrong and, where it can, what to do. */

/** Base class: every error this library throws on purpose is a SaliencyError. */
export class SaliencyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No WebGPU adapter or device could be obtained. */
export class NoGpuError extends SaliencyError {}

/** The GPU reported a validation or out-of-memory error, or the device was lost. */
export class GpuError extends SaliencyError {}

/** A tensor had the wrong shape, rank, dtype or size for an operation. */
export class ShapeError extends SaliencyError {}

/** A tensor was used after it was disposed. */
export class DisposedError extends SaliencyError {}

/** An invalid argument that is not a shape problem (bad option, unknown name, NaN config). */
export class ArgumentError extends SaliencyError {}

/**
 * A file or byte stream (model, weights, image, manifest) is malformed, unsupported, outside the
 * folder it must stay in, or declares sizes beyond a limit. Raised before any large allocation.
 */
export class FormatError extends SaliencyError {}

/** A long run was stopped through its AbortSignal. */
export class CancelledError extends SaliencyError {}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
