/**
 * Reading an HTTP response body from a stranger's server under a size limit (browser-safe): the
 * declared Content-Length is checked first; a body without one (or a compressed one) is read in
 * chunks and abandoned as soon as it passes the limit, so a server that sends endless data cannot
 * exhaust memory.
 */
import { FormatError } from './errors.js';
import { raiseHint, resolveLimits, type Limits } from './limits.js';

/** The bytes of `res`'s body; a FormatError naming `what` when it is larger than `maxModelBytes`. */
export async function readResponse(res: Response, what: string, limits?: Partial<Limits>): Promise<Uint8Array> {
  const max = resolveLimits(limits, 'readResponse').maxModelBytes;
  const tooLarge = (size: string) => new FormatError(`${what} is ${size} bytes, more than the limit of ${max} (${raiseHint('maxModelBytes')})`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(String(declared));
  }
  // A declared length frames the body (the client reads no more than that), so the whole body can be
  // taken at once; a compressed body may inflate past its declared length, so it is streamed.
  const encoded = (res.headers.get('content-encoding') ?? 'identity').toLowerCase() !== 'identity';
  if (!res.body || (declared >= 0 && !encoded)) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(`more than ${max}`);
    }
    parts.push(value);
  }
  return concatBytes(parts);
}

/** The parts one after another in one array (the part itself when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
