/**
 * The web component's model loading, in Node with `fetch` replaced: a hostile .safetensors URL gets
 * the same protection as a file (no prototype pollution), a response body is read under the size
 * limit, and the component's queue is the device's own (`gpu.exclusive`).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { serializeSafetensors } from '../src/nets/safetensors.js';
import { FormatError, SaliencyError } from '../src/runtime/errors.js';
import { setLimits } from '../src/runtime/limits.js';
import { exclusive, resolveModelRef, sharedGpu } from '../src/web/models.js';

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
  delete (Object.prototype as Record<string, unknown>).allowMissing;
});
afterAll(async () => (await sharedGpu()).destroy());

function serve(response: () => Response): void {
  globalThis.fetch = (async () => response()) as typeof fetch;
}

function loaderOf(ref: string) {
  const where = resolveModelRef(ref);
  if (!('url' in where)) throw new Error(`${ref} resolved to a bundled model`);
  return () => sharedGpu().then((gpu) => where.loader(gpu, where.url));
}

async function failure(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

const spec = { input: [1, 2, 2], layers: [{ name: 'flat', type: 'flatten' }, { name: 'fc', type: 'linear', in: 4, out: 2 }] };

describe('the web loader with hostile model URLs', () => {
  it("a .safetensors with a tensor named '__proto__.allowMissing' does not pollute Object.prototype", async () => {
    const bytes = serializeSafetensors(
      { 'fc.weight': { shape: [2, 4], data: new Float32Array(8) }, 'fc.bias': { shape: [2], data: new Float32Array(2) }, '__proto__.allowMissing': { shape: [1], data: new Float32Array(1) } },
      { spec: JSON.stringify(spec) },
    );
    serve(() => new Response(new Blob([bytes.slice()])));
    const err = await failure(loaderOf('https://example.test/models/evil.safetensors'));
    expect(err).toBeInstanceOf(SaliencyError);
    expect(err.message).toMatch(/evil\.safetensors: weights given for '__proto__', which is not a layer of the spec/);
    expect(({} as Record<string, unknown>).allowMissing).toBeUndefined();
  });

  it('a response that declares more bytes than the limit is refused before its body is read', async () => {
    let pulled = 0;
    serve(
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              pulled++;
              c.enqueue(new Uint8Array(1 << 20));
            },
          }),
          { headers: { 'content-length': String(10 * 2 ** 30) } },
        ),
    );
    const err = await failure(loaderOf('https://example.test/big.safetensors'));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/model file https:\/\/example\.test\/big\.safetensors is 10737418240 bytes, more than the limit of 2147483648/);
    expect(pulled).toBeLessThan(3);
  });

  it('an endless body without a length is cut off at the limit', async () => {
    const before = setLimits({ maxModelBytes: 4 * 2 ** 20 });
    try {
      let pulled = 0;
      serve(
        () =>
          new Response(
            new ReadableStream({
              pull(c) {
                pulled++;
                c.enqueue(new Uint8Array(1 << 20));
              },
            }),
          ),
      );
      const err = await failure(loaderOf('https://example.test/endless.safetensors'));
      expect(err).toBeInstanceOf(FormatError);
      expect(err.message).toMatch(/endless\.safetensors is more than 4194304 bytes, more than the limit of 4194304/);
      expect(pulled).toBeLessThan(8);
    } finally {
      setLimits(before);
    }
  });

  it("'constructor' and '__proto__' are not bundled model names", () => {
    for (const name of ['constructor', '__proto__', 'toString']) expect(() => resolveModelRef(name)).toThrow(/neither a bundled model/);
  });
});

describe("the component's queue", () => {
  it('is the device queue: web exclusive() and gpu.exclusive() jobs never overlap', async () => {
    const gpu = await sharedGpu();
    const order: string[] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const component = exclusive(async () => {
      order.push('component start');
      await sleep(30);
      order.push('component end');
    });
    await sleep(5); // the component's job is running now
    const library = gpu.exclusive(async () => {
      order.push('library start');
      await sleep(1);
      order.push('library end');
    });
    await Promise.all([component, library]);
    expect(order).toEqual(['component start', 'component end', 'library start', 'library end']);
  });
});
