/**
 * The ONNX conformance models of Debian's libonnx-testdata (ONNX's own backend test data: a
 * model.onnx and test_data_set_N with input_K.pb and output_K.pb per case) run through loadOnnxModel and
 * through ONNX Runtime's CPU provider (onnxruntime-node), outputs compared at 1e-4 relative.
 *
 * Models that declare an opset below 9 (the pytorch-converted ones: opset 6) are loaded by us
 * re-declared as opset 9 (`atOpset9`), while ONNX Runtime runs the original file: an op whose
 * meaning changed between the two versions would show up as a failure or an unsupported case.
 * Where ONNX Runtime no longer implements the old opset, it runs the re-declared model too, and our
 * outputs must then also match the case's own expected outputs (made by the framework that wrote
 * the test).
 *
 * Our models take one image input: the case's first float input (rank ≥ 2) is that input and any
 * other input becomes a constant with its test value (`constants`), as an initialiser would be.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadOnnxModel } from '../src/nets/onnx/model.js';
import { decodeModelProto, decodeTensorProto, encodeModelProto, DATA_TYPES, toNumber, type OnnxTensorProto } from '../src/nets/onnx/schema.js';
import { decodeTensorSync } from '../src/nets/onnx/tensors.js';
import { halfToFloatTable, hostLimits, type HostTensor } from '../src/nets/graph/host.js';
import { SaliencyError } from '../src/runtime/errors.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor } from '../src/runtime/tensor.js';

export const TESTDATA = '/usr/share/libonnx-testdata/data';

export interface ConformanceCase {
  suite: 'node' | 'pytorch-converted' | 'pytorch-operator';
  name: string;
  dir: string;
  /** The ops of the model's nodes, without duplicates (Constant left out when others exist). */
  ops: string[];
}

export type Outcome =
  | { status: 'pass'; error: number }
  | { status: 'fail'; error: number; detail: string }
  | { status: 'unsupported'; detail: string }
  | { status: 'skipped'; detail: string };

/** The cases of a suite, with the ops each uses. */
export function listCases(suite: ConformanceCase['suite']): ConformanceCase[] {
  const root = join(TESTDATA, suite);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort()
    .filter((name) => existsSync(join(root, name, 'model.onnx')))
    .map((name) => {
      const dir = join(root, name);
      let ops: string[] = [];
      try {
        const m = decodeModelProto(readFileSync(join(dir, 'model.onnx')), name);
        ops = [...new Set((m.graph?.node ?? []).map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType ?? '')))];
        if (ops.length > 1) ops = ops.filter((o) => o !== 'Constant');
      } catch {
        ops = ['(unreadable)'];
      }
      return { suite, name, dir, ops };
    });
}

const FLOAT_TYPES = new Set<number>([DATA_TYPES.FLOAT, DATA_TYPES.DOUBLE, DATA_TYPES.FLOAT16]);

function ortTensor(t: OnnxTensorProto, h: HostTensor): ort.Tensor {
  const dims = h.shape;
  switch (t.dataType) {
    case DATA_TYPES.FLOAT:
      return new ort.Tensor('float32', Float32Array.from(h.data), dims);
    case DATA_TYPES.DOUBLE:
      return new ort.Tensor('float64', Float64Array.from(h.data), dims);
    case DATA_TYPES.INT64:
      return new ort.Tensor('int64', BigInt64Array.from([...h.data].map((v) => BigInt(v))), dims);
    case DATA_TYPES.INT32:
      return new ort.Tensor('int32', Int32Array.from(h.data), dims);
    case DATA_TYPES.BOOL:
      return new ort.Tensor('bool', Uint8Array.from(h.data), dims);
    case DATA_TYPES.UINT8:
      return new ort.Tensor('uint8', Uint8Array.from(h.data), dims);
    case DATA_TYPES.INT8:
      return new ort.Tensor('int8', Int8Array.from(h.data), dims);
    default:
      throw new Error(`data type ${t.dataType}`);
  }
}

/** max |a − b| / max |b| (Infinity on NaN or a length mismatch). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]!) !== Number.isNaN(b[i]!)) return Infinity;
    if (Number.isNaN(b[i]!)) continue;
    if (a[i] === b[i]) continue; // equal infinities
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err === 0 ? 0 : err / Math.max(scale, 1e-30);
}

/** The model bytes with the default domain's opset raised to 9 when it is lower (and whether it was). */
export function atOpset9(bytes: Uint8Array, name: string): { bytes: Uint8Array; bumped: boolean } {
  const m = decodeModelProto(bytes, name);
  const o = (m.opsetImport ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
  if (!o || toNumber(o.version) >= 9) return { bytes, bumped: false };
  o.version = 9;
  // Attributes opset 9 no longer has (their old defaults are opset 9's behaviour): broadcast (7:
  // NumPy broadcasting is always on), BatchNormalization's is_test (7) and spatial (9), and
  // consumed_inputs (6). An elementwise 'axis' (old-style broadcasting) is kept: the case then fails loudly.
  const gone = new Set(['broadcast', 'is_test', 'spatial', 'consumed_inputs']);
  for (const n of m.graph?.node ?? []) n.attribute = (n.attribute ?? []).filter((a) => !gone.has(a.name ?? ''));
  return { bytes: encodeModelProto(m), bumped: true };
}


/** Runs one case (its first test data set) through both implementations. */
export async function runCase(gpu: Gpu, c: ConformanceCase, tolerance = 1e-4): Promise<Outcome> {
  const setDir = join(c.dir, 'test_data_set_0');
  if (!existsSync(setDir)) return { status: 'skipped', detail: 'no test data' };
  const proto = decodeModelProto(readFileSync(join(c.dir, 'model.onnx')), c.name);
  const graph = proto.graph!;
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !inits.has(i.name));
  const read = (kind: 'input' | 'output', k: number) => {
    const t = decodeTensorProto(readFileSync(join(setDir, `${kind}_${k}.pb`)), `${kind}_${k}.pb`);
    return { proto: t, host: decodeTensorSync(t, hostLimits(), `${kind}_${k}.pb`) };
  };
  let values: { proto: OnnxTensorProto; host: HostTensor }[];
  try {
    values = inputs.map((_, k) => read('input', k));
  } catch (e) {
    return { status: 'skipped', detail: `test data: ${(e as Error).message}` };
  }
  const main = inputs.findIndex((i, k) => FLOAT_TYPES.has(i.type?.tensorType?.elemType ?? 0) && values[k]!.host.shape.length >= 1);
  if (main < 0) return { status: 'skipped', detail: 'no float input (of rank ≥ 1) to be the image input' };
  const outputs = (graph.output ?? []).map((o) => o.name!);
  // ONNX Runtime, all inputs fed: the original model, or (where it no longer implements the old
  // opset) the one re-declared as opset 9, which then is also checked against the case's own
  // expected outputs.
  const original = readFileSync(join(c.dir, 'model.onnx'));
  const { bytes: ours9, bumped } = atOpset9(original, c.name);
  const runOrt = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    try {
      const feeds = Object.fromEntries(inputs.map((i, k) => [i.name!, ortTensor(values[k]!.proto, values[k]!.host)]));
      const result = await session.run(feeds);
      return outputs.map((o) => result[o]!);
    } finally {
      await session.release();
    }
  };
  let reference: ort.Tensor[];
  let ortOnBumped = false;
  try {
    reference = await runOrt(original);
  } catch (e) {
    if (!bumped) return { status: 'skipped', detail: `ONNX Runtime: ${(e as Error).message.split('\n')[0]}` };
    try {
      reference = await runOrt(ours9);
      ortOnBumped = true;
    } catch (e2) {
      return { status: 'skipped', detail: `ONNX Runtime: ${(e2 as Error).message.split('\n')[0]}` };
    }
  }
  if (reference.some((r) => !['float32', 'float64', 'float16'].includes(r.type))) return { status: 'unsupported', detail: `non-float output (${reference.map((r) => r.type).join(', ')})` };
  const constants = new Map(inputs.filter((_, k) => k !== main).map((i, k) => [i.name!, values[k >= main ? k + 1 : k]!.host]));
  const before = gpu.memory();
  let model;
  try {
    model = await loadOnnxModel(gpu, ours9, { constants, outputs, name: c.name });
  } catch (e) {
    if (e instanceof SaliencyError) return { status: 'unsupported', detail: e.message };
    throw e;
  }
  try {
    const x = values[main]!.host;
    const xt = tensor(gpu, Float32Array.from(x.data), x.shape);
    try {
      const ys = await model.forwardAll(xt);
      let worst = 0;
      for (const [k, o] of outputs.entries()) {
        const y = ys[o]!;
        const ours = await y.read();
        const theirs = reference[k]!;
        if (y.shape.join() !== theirs.dims.join()) {
          for (const t of Object.values(ys)) t.dispose();
          return { status: 'fail', error: Infinity, detail: `output '${o}' has shape [${y.shape}], ONNX Runtime's [${theirs.dims}]` };
        }
        const table = halfToFloatTable();
        const data = theirs.data instanceof Uint16Array ? Float64Array.from(theirs.data, (h) => table[h]!) : Float64Array.from(theirs.data as Float32Array);
        worst = Math.max(worst, relError(ours, data));
        if (ortOnBumped) {
          const expected = read('output', k).host;
          worst = Math.max(worst, relError(ours, expected.data));
        }
      }
      for (const t of Object.values(ys)) t.dispose();
      return worst <= tolerance ? { status: 'pass', error: worst } : { status: 'fail', error: worst, detail: `relative error ${worst.toExponential(2)}` };
    } catch (e) {
      if (e instanceof SaliencyError) return { status: 'unsupported', detail: `at run time: ${e.message}` };
      throw e;
    } finally {
      xt.dispose();
    }
  } finally {
    model.dispose();
    const after = gpu.memory();
    if (after.tensors !== before.tensors) throw new Error(`${c.name}: ${after.tensors - before.tensors} tensors left allocated`);
  }
}

export { toNumber };
