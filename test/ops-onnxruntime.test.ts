/**
 * Our kernels against ONNX Runtime (onnxruntime-node, CPU) on attribute sweeps of the ops whose
 * ONNX semantics are subtle: pooling (ceil_mode, dilations, asymmetric pads, count_include_pad),
 * Resize (every coordinate transformation and nearest mode, sizes and scales), Pad (constant,
 * reflect, edge, with crops) and ConvTranspose (groups, strides, dilations, pads,
 * output_padding). The models are test/fixtures/onnx-ops/*.onnx, made by
 * scripts/make-onnx-op-fixtures.py.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { avgPool2d, maxPool2d } from '../src/kernels/pool.js';
import { axisTaps, resize, type CoordinateTransformationMode, type NearestMode, type ResizeOptions } from '../src/kernels/resize.js';
import { pad, type PadMode } from '../src/kernels/pad.js';
import { convTranspose2d } from '../src/kernels/conv-transpose.js';
import { tensor } from '../src/runtime/tensor.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';

const DIR = join(import.meta.dirname, 'fixtures', 'onnx-ops');
const CASES = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as {
  pool: { op: string; shape: number[]; kernel_shape: number[]; strides: number[]; dilations: number[]; pads: number[]; ceil_mode: number; count_include_pad?: number }[];
  resize: { input: 'sizes' | 'scales'; mode: 'nearest' | 'linear'; ctm: CoordinateTransformationMode; nearest: NearestMode | null }[];
  pad: { mode: PadMode }[];
  conv_transpose: { shape: number[]; group: number; kernel_shape: number[]; strides: number[]; dilations: number[]; pads: number[]; output_padding: number[] }[];
};

const session = (name: string) => ort.InferenceSession.create(join(DIR, `${name}.onnx`), { logSeverityLevel: 3 });
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const i64 = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [values.length]);
/** ONNX pads [x1_begin, x2_begin, x1_end, x2_end] as our [top, bottom, left, right]. */
const tblr = (p: number[]): [number, number, number, number] => [p[0]!, p[2]!, p[1]!, p[3]!];

describe('kernels against ONNX Runtime', () => {
  it(`MaxPool and AveragePool: ${CASES.pool.length} configurations`, async () => {
    const gpu = await getGpu();
    const s = await session('pool');
    const feeds: Record<string, ort.Tensor> = {};
    const data = CASES.pool.map((c, i) => randomArray(product(c.shape), 100 + i, -2, 2));
    CASES.pool.forEach((c, i) => (feeds[`x${i}`] = f32(data[i]!, c.shape)));
    const out = await s.run(feeds);
    for (const [i, c] of CASES.pool.entries()) {
      const params = { kernel: c.kernel_shape as [number, number], stride: c.strides as [number, number], dilation: c.dilations as [number, number], padding: tblr(c.pads), ceilMode: !!c.ceil_mode };
      const x = tensor(gpu, data[i]!, c.shape);
      const y = c.op === 'MaxPool' ? await maxPool2d(x, params) : await avgPool2d(x, { ...params, countIncludePad: !!c.count_include_pad });
      const want = out[`y${i}`]!;
      expect(y.shape, JSON.stringify(c)).toEqual(want.dims.map(Number));
      expectClose(await y.read(), want.data as Float32Array, 1e-6, 1e-5);
      x.dispose();
      y.dispose();
    }
  });

  it('Resize, output sizes: every nearest and linear map for every size pair 1..16', async () => {
    const s = await session('resize');
    const n = CASES.resize.length;
    for (let inW = 1; inW <= 16; inW++) {
      for (let outW = 1; outW <= 16; outW++) {
        const feeds: Record<string, ort.Tensor> = {};
        const iota = Float32Array.from({ length: inW }, (_, k) => k);
        for (let i = 0; i < n; i++) {
          feeds[`x${i}`] = f32(iota, [1, 1, 1, inW]);
          if (CASES.resize[i]!.input === 'sizes') feeds[`sizes${i}`] = i64([1, 1, 1, outW]);
          else feeds[`scales${i}`] = f32(Float32Array.of(1, 1, 1, 1), [4]);
        }
        const out = await s.run(feeds);
        for (const [i, c] of CASES.resize.entries()) {
          if (c.input !== 'sizes') continue;
          // The output of an index ramp is, per output, the (interpolated) index it samples.
          const got = out[`y${i}`]!.data as Float32Array;
          const t = axisTaps(inW, outW, { mode: c.mode === 'linear' ? 'bilinear' : 'nearest', coordinateTransformationMode: c.ctm, nearestMode: c.nearest ?? undefined }, 1);
          const ours = Float32Array.from(t.i0, (i0, o) => (1 - t.w1[o]!) * i0 + t.w1[o]! * t.i1[o]!);
          expectClose(ours, got, 2e-6, 1e-6);
        }
      }
    }
  });

  it('Resize, given scales: our kernel on images of widths 1..12', async () => {
    const gpu = await getGpu();
    const s = await session('resize');
    const n = CASES.resize.length;
    for (const scale of [0.4, 0.75, 1.3, 1.5, 2.5, 3]) {
      for (let inW = 1; inW <= 12; inW++) {
        const data = randomArray(inW, inW, -1, 1);
        const feeds: Record<string, ort.Tensor> = {};
        for (let i = 0; i < n; i++) {
          feeds[`x${i}`] = f32(data, [1, 1, 1, inW]);
          if (CASES.resize[i]!.input === 'sizes') feeds[`sizes${i}`] = i64([1, 1, 1, inW]);
          else feeds[`scales${i}`] = f32(Float32Array.of(1, 1, 1, scale), [4]);
        }
        if (Math.floor(inW * scale) < 1) continue;
        const out = await s.run(feeds);
        const x = tensor(gpu, data, [1, 1, 1, inW]);
        for (const [i, c] of CASES.resize.entries()) {
          if (c.input !== 'scales') continue;
          const want = out[`y${i}`]!;
          const options: ResizeOptions = { mode: c.mode === 'linear' ? 'bilinear' : 'nearest', coordinateTransformationMode: c.ctm, nearestMode: c.nearest ?? undefined, scales: [1, scale] };
          const y = await resize(x, [1, Number(want.dims[3])], options);
          expectClose(await y.read(), want.data as Float32Array, 1e-6, 1e-5);
          y.dispose();
        }
        x.dispose();
      }
    }
  });

  it('Pad: constant, reflect and edge, with crops', async () => {
    const gpu = await getGpu();
    const s = await session('pad');
    const shape = [2, 3, 4, 5];
    const data = randomArray(product(shape), 7);
    for (const pads of [
      [0, 0, 1, 2, 0, 0, 2, 1],
      [0, 1, -1, 2, 0, 0, 1, -2],
      [1, 0, 0, -1, 0, 1, 3, 0],
    ]) {
      const feeds: Record<string, ort.Tensor> = {};
      CASES.pad.forEach((_, i) => {
        feeds[`x${i}`] = f32(data, shape);
        feeds[`pads${i}`] = i64(pads);
        feeds[`value${i}`] = f32(Float32Array.of(0.25), []);
      });
      const out = await s.run(feeds);
      const x = tensor(gpu, data, shape);
      for (const [i, c] of CASES.pad.entries()) {
        const y = await pad(x, pads, { mode: c.mode, value: 0.25 });
        const want = out[`y${i}`]!;
        expect(y.shape).toEqual(want.dims.map(Number));
        expectClose(await y.read(), want.data as Float32Array, 0, 0);
        y.dispose();
      }
      x.dispose();
    }
  });

  it(`ConvTranspose: ${CASES.conv_transpose.length} configurations`, async () => {
    const gpu = await getGpu();
    const s = await session('conv_transpose');
    const feeds: Record<string, ort.Tensor> = {};
    const data = CASES.conv_transpose.map((c, i) => randomArray(product(c.shape), 200 + i));
    CASES.conv_transpose.forEach((c, i) => (feeds[`x${i}`] = f32(data[i]!, c.shape)));
    const out = await s.run(feeds);
    for (const [i, c] of CASES.conv_transpose.entries()) {
      // The model's weights, which it also returns as outputs.
      const [w, b] = [out[`w${i}_out`]!, out[`b${i}_out`]!];
      const x = tensor(gpu, data[i]!, c.shape);
      const tw = tensor(gpu, w.data as Float32Array, w.dims.map(Number));
      const tb = tensor(gpu, b.data as Float32Array, b.dims.map(Number));
      const y = await convTranspose2d(x, tw, tb, {
        groups: c.group,
        stride: c.strides as [number, number],
        dilation: c.dilations as [number, number],
        padding: tblr(c.pads),
        outputPadding: c.output_padding as [number, number],
      });
      const want = out[`y${i}`]!;
      expect(y.shape, JSON.stringify(c)).toEqual(want.dims.map(Number));
      expectClose(await y.read(), want.data as Float32Array, 1e-5, 1e-4);
      for (const t of [x, tw, tb, y]) t.dispose();
    }
  });
});
