/**
 * The .npy writer and reader against files numpy itself wrote (test/fixtures/npy, made by
 * scripts/make-npy-fixtures.py with numpy's np.save): the writer's bytes must be numpy's, byte for
 * byte, and the reader must give numpy's values back.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, writeNpy } from '../src/runtime/npy.js';
import { ArgumentError, FormatError } from '../src/runtime/errors.js';

const dir = 'test/fixtures/npy';
const fixture = (name: string) => new Uint8Array(readFileSync(join(dir, `${name}.npy`)));

/** The values numpy wrote, from the JSON beside each file (NaN, ±Infinity and -0 as strings). */
function expected(name: string): { shape: number[]; values: Float32Array } {
  const j = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { shape: number[]; values: (number | string)[] };
  const word: Record<string, number> = { nan: NaN, inf: Infinity, '-inf': -Infinity, '-0': -0 };
  return { shape: j.shape, values: Float32Array.from(j.values, (v) => (typeof v === 'string' ? word[v]! : v)) };
}

const NAMES = ['scalar', 'vector', 'chw', 'special', 'empty', 'rank24'];

describe('.npy', () => {
  it.each(NAMES)('encodeNpy writes the bytes np.save wrote (%s)', (name) => {
    const { shape, values } = expected(name);
    expect(Buffer.from(encodeNpy(values, shape)).equals(Buffer.from(fixture(name)))).toBe(true);
  });

  it.each([...NAMES, 'chw-v2', 'chw-v3'])('decodeNpy reads what numpy wrote (%s)', (name) => {
    const { shape, values } = expected(name.replace(/-v\d$/, ''));
    const got = decodeNpy(fixture(name));
    expect(got.shape).toEqual(shape);
    expect(got.data.length).toBe(values.length);
    for (let i = 0; i < values.length; i++) expect(Object.is(got.data[i], values[i]), `value ${i}: ${got.data[i]} vs ${values[i]}`).toBe(true);
  });

  it('writeNpy writes the file atomically and it reads back', () => {
    const out = mkdtempSync(join(tmpdir(), 'npy-'));
    const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i) * 1e3);
    writeNpy(join(out, 'map.npy'), data, [2, 3, 4]);
    expect(readdirSync(out)).toEqual(['map.npy']); // no temporary file left
    const back = decodeNpy(new Uint8Array(readFileSync(join(out, 'map.npy'))));
    expect(back.shape).toEqual([2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('refuses other dtypes, Fortran order, and headers that do not match the data', () => {
    expect(() => decodeNpy(fixture('float64'))).toThrow(/holds '<f8' values/);
    expect(() => decodeNpy(fixture('fortran'))).toThrow(/Fortran order/);
    const chw = fixture('chw');
    expect(() => decodeNpy(chw.subarray(0, chw.length - 1))).toThrow(FormatError);
    expect(() => decodeNpy(chw.subarray(0, 40))).toThrow(/header claims/);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]))).toThrow(/not a .npy file/);
    const lying = chw.slice();
    lying.set(Buffer.from("(9, 4, 5)"), Buffer.from(chw).indexOf("(1, 4, 5)"));
    expect(() => decodeNpy(lying)).toThrow(/needs 720 bytes of data; the file has 80/);
  });

  it('checks its arguments', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow(ArgumentError);
    expect(() => encodeNpy(new Float32Array(1), [1.5])).toThrow(/whole numbers/);
    expect(() => encodeNpy([1] as unknown as Float32Array, [1])).toThrow(/Float32Array/);
  });
});
