import { describe, expect, it } from 'vitest';
import { halfToFloat, parseSafetensors, serializeSafetensors } from '../src/nets/safetensors.js';

/** Builds a file by hand, byte by byte, following the format description (not our writer). */
function handMade(headerJson: string, data: number[]): Uint8Array {
  const header = new TextEncoder().encode(headerJson);
  const out = new Uint8Array(8 + header.length + data.length);
  out[0] = header.length & 0xff;
  out[1] = (header.length >> 8) & 0xff;
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

describe('safetensors', () => {
  it('reads a hand-made file with F32, F16 and BF16 tensors and metadata', () => {
    // F32 1.5 = 0x3fc00000; F16 -2 = 0xc000; BF16 0.5 = 0x3f00; I64 7
    const header = JSON.stringify({
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      h: { dtype: 'F16', shape: [1], data_offsets: [4, 6] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [6, 8] },
      i: { dtype: 'I64', shape: [], data_offsets: [8, 16] },
    });
    const file = handMade(header, [0, 0, 0xc0, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 7, 0, 0, 0, 0, 0, 0, 0]);
    const { tensors, metadata } = parseSafetensors(file);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.get('a')!.data]).toEqual([1.5]);
    expect([...tensors.get('h')!.data]).toEqual([-2]);
    expect([...tensors.get('b')!.data]).toEqual([0.5]);
    expect([...tensors.get('i')!.data]).toEqual([7]);
    expect(tensors.get('i')!.shape).toEqual([]);
  });

  it('round-trips through the writer with an 8-byte aligned data section', () => {
    const w = Float32Array.from({ length: 24 }, (_, i) => i * 0.25 - 3);
    const bytes = serializeSafetensors({ 'conv1.weight': { shape: [2, 3, 2, 2], data: w }, 'conv1.bias': { shape: [2], data: new Float32Array([1, -1]) } }, { seed: '7' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const back = parseSafetensors(bytes);
    expect(back.tensors.get('conv1.weight')!.shape).toEqual([2, 3, 2, 2]);
    expect([...back.tensors.get('conv1.weight')!.data]).toEqual([...w]);
    expect([...back.tensors.get('conv1.bias')!.data]).toEqual([1, -1]);
    expect(back.metadata.seed).toBe('7');
  });

  it('rejects corrupt and truncated files with a clear reason', () => {
    const good = serializeSafetensors({ w: { shape: [4], data: new Float32Array([1, 2, 3, 4]) } });
    expect(() => parseSafetensors(good.subarray(0, good.length - 2), 'w.safetensors')).toThrow(/w.safetensors .*outside the .*data section \(truncated file\?\)/);
    expect(() => parseSafetensors(new Uint8Array(4))).toThrow(/only 4 bytes/);
    const garbage = new Uint8Array(64).fill(0x41);
    expect(() => parseSafetensors(garbage)).toThrow(/header length/);
    expect(() => parseSafetensors(handMade('{"w": 3', []))).toThrow(/not JSON/);
    expect(() => parseSafetensors(handMade('{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', [0]))).toThrow(/unsupported dtype "Q4"/);
    expect(() => parseSafetensors(handMade('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]))).toThrow(/needs 8 bytes, the file gives 4/);
    expect(() =>
      parseSafetensors(handMade('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', [1, 2, 3])),
    ).toThrow(/overlap/);
  });

  it('decodes half floats including subnormals and infinities', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.960464477539063e-8, 15);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7bff)).toBe(65504);
  });
});
