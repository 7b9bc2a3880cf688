/**
 * Limits on what files from strangers may make the library allocate. Every loader checks the sizes
 * a file declares (image dimensions, tensor shapes, file sizes) against these before it allocates,
 * and refuses with a FormatError that names the limit.
 *
 * The limits are process-wide defaults (`setLimits` raises or lowers them; the CLI reads the
 * SALIENCY_MAX_* environment variables) and every loader also takes its own `limits` option, which
 * wins for that call. Browser-safe (no Node imports).
 */
import { ArgumentError, FormatError } from './errors.js';

export interface Limits {
  /** Largest decoded image, in pixels (width × height), checked from the PNG or JPEG header. */
  maxImagePixels: number;
  /** Largest image file, in bytes. */
  maxImageBytes: number;
  /** Largest model or weights file (safetensors, model.json, one weight shard), in bytes. */
  maxModelBytes: number;
  /**
   * Largest tensor a model may declare or imply, in elements: its input, every layer's output and
   * every weight. One float32 tensor of this many elements takes 4× as many bytes.
   */
  maxTensorElements: number;
}

/** The limits the library starts with. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxImagePixels: 50_000_000,
  maxImageBytes: 256 * 1024 * 1024,
  maxModelBytes: 2 * 1024 * 1024 * 1024,
  maxTensorElements: 2 ** 28,
});

/** Environment variables the CLI reads (`SALIENCY_MAX_IMAGE_PIXELS=200000000 saliency explain …`). */
export const LIMIT_ENVIRONMENT: Readonly<Record<keyof Limits, string>> = Object.freeze({
  maxImagePixels: 'SALIENCY_MAX_IMAGE_PIXELS',
  maxImageBytes: 'SALIENCY_MAX_IMAGE_BYTES',
  maxModelBytes: 'SALIENCY_MAX_MODEL_BYTES',
  maxTensorElements: 'SALIENCY_MAX_TENSOR_ELEMENTS',
});

const KEYS = Object.keys(DEFAULT_LIMITS) as (keyof Limits)[];

let current: Readonly<Limits> = DEFAULT_LIMITS;

/** The process-wide limits now in force. */
export function getLimits(): Readonly<Limits> {
  return current;
}

/**
 * Changes the process-wide limits (the keys given; the others stay). Each must be a positive safe
 * integer. Returns the limits that were in force before, so a caller can restore them.
 */
export function setLimits(changes: Partial<Limits>): Readonly<Limits> {
  const before = current;
  current = Object.freeze({ ...current, ...checkLimits(changes, 'setLimits') });
  return before;
}

/** The limits for one call: the process-wide ones, overridden by `overrides`. */
export function resolveLimits(overrides: Partial<Limits> | undefined, op = 'limits'): Readonly<Limits> {
  return overrides === undefined ? current : { ...current, ...checkLimits(overrides, op) };
}

function checkLimits(changes: Partial<Limits>, op: string): Partial<Limits> {
  if (!changes || typeof changes !== 'object') throw new ArgumentError(`${op}: expected an object of limits (${KEYS.join(', ')})`);
  const out: Partial<Limits> = {};
  for (const key of Object.keys(changes)) {
    if (!(KEYS as string[]).includes(key)) throw new ArgumentError(`${op}: unknown limit '${key.slice(0, 80)}'; limits: ${KEYS.join(', ')}`);
    const v = changes[key as keyof Limits];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v <= 0) throw new ArgumentError(`${op}: ${key} must be a positive integer, got ${String(v).slice(0, 80)}`);
    out[key as keyof Limits] = v;
  }
  return out;
}

/**
 * Reads the SALIENCY_MAX_* variables of `env` into the process-wide limits (the CLI calls it once).
 * A malformed value is an ArgumentError naming the variable.
 */
export function limitsFromEnvironment(env: Record<string, string | undefined>): void {
  const changes: Partial<Limits> = {};
  for (const key of KEYS) {
    const name = LIMIT_ENVIRONMENT[key];
    const text = env[name];
    if (text === undefined || text === '') continue;
    const v = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (!Number.isSafeInteger(v) || v <= 0) throw new ArgumentError(`${name} must be a positive integer, got '${text.slice(0, 80)}'`);
    changes[key] = v;
  }
  setLimits(changes);
}

/** How to raise `key`, for error messages. */
export function raiseHint(key: keyof Limits): string {
  return `raise it with setLimits({ ${key} }) or the ${LIMIT_ENVIRONMENT[key]} environment variable`;
}

/** Throws a FormatError when `elements` (a tensor's size) exceeds the tensor limit. */
export function checkTensorElements(elements: number, what: string, limits: Readonly<Limits> = current): void {
  if (!(elements <= limits.maxTensorElements)) {
    throw new FormatError(
      `${what} has ${Number.isFinite(elements) ? elements : 'too many'} elements, more than the limit of ${limits.maxTensorElements} (${raiseHint('maxTensorElements')})`,
    );
  }
}
