/**
 * ONNX tensors (initialisers, Constant values) to host tensors: float32, float16 and float64 to
 * float32; int8…int64, uint8…uint64 and bool to int32 (int64 shape values beyond the int32 range,
 * such as INT64_MAX as "to the end" in Slice, are clamped). Data comes from raw_data, the typed
 * fields, or an external file next to the model. Every declared size is checked against the bytes
 * present and the limits before anything is allocated.
 */
import { FormatError, formatShape } from '../../runtime/errors.js';
import { checkedElements, halfToFloatTable, type GraphLimits, type HostTensor } from '../graph/host.js';
import { DATA_TYPE_NAMES, DATA_TYPES, toNumber, type Int64, type OnnxTensorProto } from './schema.js';

/** Bytes per element of the data types we read. */
const ELEMENT_BYTES: ReadonlyMap<number, number> = new Map([
  [DATA_TYPES.FLOAT, 4], [DATA_TYPES.UINT8, 1], [DATA_TYPES.INT8, 1], [DATA_TYPES.UINT16, 2], [DATA_TYPES.INT16, 2],
  [DATA_TYPES.INT32, 4], [DATA_TYPES.INT64, 8], [DATA_TYPES.BOOL, 1], [DATA_TYPES.FLOAT16, 2], [DATA_TYPES.DOUBLE, 8],
  [DATA_TYPES.UINT32, 4], [DATA_TYPES.UINT64, 8], [DATA_TYPES.BFLOAT16, 2],
]); // prettier-ignore

const FLOAT_TYPES: ReadonlySet<number> = new Set([DATA_TYPES.FLOAT, DATA_TYPES.FLOAT16, DATA_TYPES.DOUBLE, DATA_TYPES.BFLOAT16]);

export const isFloatType = (t: number): boolean => FLOAT_TYPES.has(t);

/** Reads the bytes of an external-data tensor: `location` relative to the model's folder, `offset`, `length`. */
export type ExternalReader = (location: string, offset: number, length: number, tensor: string) => Promise<Uint8Array>;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const clampInt = (v: number) => (v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);

/** The declared dims of a tensor, checked. */
export function tensorDims(t: OnnxTensorProto, limits: GraphLimits, what: string): number[] {
  const dims = (t.dims ?? []).map((d) => toNumber(d));
  checkedElements(dims, limits, what);
  return dims;
}

/**
 * Decodes a TensorProto into a host tensor. External data is read through `readExternal`
 * (undefined: the model came without a way to read other files).
 */
export async function decodeTensor(t: OnnxTensorProto, limits: GraphLimits, what: string, readExternal?: ExternalReader): Promise<HostTensor> {
  if (t.dataLocation !== 1) return decodeTensorSync(t, limits, what);
  const { n, size } = checkType(t, limits, what);
  return decodeTensorSync(t, limits, what, await readExternalData(t, n * size, what, readExternal));
}

function checkType(t: OnnxTensorProto, limits: GraphLimits, what: string): { dims: number[]; n: number; type: number; size: number } {
  const dims = tensorDims(t, limits, what);
  const n = dims.reduce((a, b) => a * b, 1);
  const type = t.dataType ?? 0;
  const size = ELEMENT_BYTES.get(type);
  if (size === undefined) {
    throw new FormatError(`${what} has data type ${DATA_TYPE_NAMES.get(type) ?? type}, which is not supported (float32, float16, float64, bfloat16, and integers or bool for shapes and indices)`);
  }
  return { dims, n, type, size };
}

/** Decodes a TensorProto whose data is in the model (or given as `external`). */
export function decodeTensorSync(t: OnnxTensorProto, limits: GraphLimits, what: string, external?: Uint8Array): HostTensor {
  const { dims, n, type, size } = checkType(t, limits, what);
  if (t.dataLocation === 1 && !external) throw new FormatError(`${what} keeps its data in an external file, which is not supported here`);
  const raw: Uint8Array | undefined = external ?? (t.rawData && t.rawData.byteLength ? t.rawData : undefined);
  const float = isFloatType(type);
  const out: HostTensor = float ? { dtype: 'float32', shape: dims, data: new Float32Array(0) } : { dtype: type === DATA_TYPES.BOOL ? 'bool' : 'int32', shape: dims, data: new Int32Array(0) };
  if (raw) {
    if (raw.byteLength !== n * size) {
      throw new FormatError(`${what} declares shape ${formatShape(dims)} of ${DATA_TYPE_NAMES.get(type)} (${n * size} bytes) but holds ${raw.byteLength} bytes of data`);
    }
    out.data = fromRaw(raw, type, n);
  } else {
    out.data = fromFields(t, type, n, what);
  }
  if (float) {
    const d = out.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      if (Number.isNaN(d[i]!)) throw new FormatError(`${what} holds NaN at index ${i}: the model file is corrupt`);
    }
  }
  return out;
}

function fromRaw(raw: Uint8Array, type: number, n: number): Float32Array | Int32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (type) {
    case DATA_TYPES.FLOAT: {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case DATA_TYPES.DOUBLE: {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case DATA_TYPES.FLOAT16: {
      const table = halfToFloatTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, true)]!;
      return out;
    }
    case DATA_TYPES.BFLOAT16: {
      const out = new Float32Array(n);
      const bits = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        bits.setUint32(0, view.getUint16(2 * i, true) << 16);
        out[i] = bits.getFloat32(0);
      }
      return out;
    }
    default: {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = clampInt(readInt(view, type, i));
      return out;
    }
  }
}

function readInt(view: DataView, type: number, i: number): number {
  switch (type) {
    case DATA_TYPES.UINT8:
    case DATA_TYPES.BOOL:
      return view.getUint8(i);
    case DATA_TYPES.INT8:
      return view.getInt8(i);
    case DATA_TYPES.UINT16:
      return view.getUint16(2 * i, true);
    case DATA_TYPES.INT16:
      return view.getInt16(2 * i, true);
    case DATA_TYPES.INT32:
      return view.getInt32(4 * i, true);
    case DATA_TYPES.UINT32:
      return view.getUint32(4 * i, true);
    case DATA_TYPES.INT64:
      return Number(view.getBigInt64(8 * i, true));
    default:
      return Number(view.getBigUint64(8 * i, true));
  }
}

/** The typed fields: float_data (float32, and float16/bfloat16 bits in int32_data), double_data, int32_data, int64_data, uint64_data. */
function fromFields(t: OnnxTensorProto, type: number, n: number, what: string): Float32Array | Int32Array {
  const take = <T>(list: T[] | undefined, field: string): T[] => {
    const l = list ?? [];
    if (l.length !== n) throw new FormatError(`${what} declares ${n} values but its ${field} holds ${l.length}${n && !l.length ? ' (no data: raw_data and the typed fields are empty)' : ''}`);
    return l;
  };
  switch (type) {
    case DATA_TYPES.FLOAT:
      return Float32Array.from(take(t.floatData, 'float_data'));
    case DATA_TYPES.DOUBLE:
      return Float32Array.from(take(t.doubleData, 'double_data'));
    case DATA_TYPES.FLOAT16: {
      const table = halfToFloatTable();
      return Float32Array.from(take(t.int32Data, 'int32_data'), (v) => table[v & 0xffff]!);
    }
    case DATA_TYPES.BFLOAT16: {
      const bits = new DataView(new ArrayBuffer(4));
      return Float32Array.from(take(t.int32Data, 'int32_data'), (v) => (bits.setUint32(0, (v & 0xffff) << 16), bits.getFloat32(0)));
    }
    case DATA_TYPES.INT64:
      return Int32Array.from(take<Int64>(t.int64Data, 'int64_data'), (v) => clampInt(toNumber(v)));
    case DATA_TYPES.UINT32:
    case DATA_TYPES.UINT64:
      return Int32Array.from(take<Int64>(t.uint64Data, 'uint64_data'), (v) => clampInt(toNumber(v)));
    default:
      return Int32Array.from(take(t.int32Data, 'int32_data'), clampInt);
  }
}

async function readExternalData(t: OnnxTensorProto, bytes: number, what: string, readExternal?: ExternalReader): Promise<Uint8Array> {
  const entries = new Map<string, string>();
  for (const e of t.externalData ?? []) entries.set(e.key ?? '', e.value ?? '');
  const location = entries.get('location');
  if (!location) throw new FormatError(`${what} keeps its data in an external file but names none (no 'location')`);
  const number = (key: string, fallback: number) => {
    const v = entries.get(key);
    if (v === undefined) return fallback;
    const x = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(x)) throw new FormatError(`${what}: external data ${key} '${v.slice(0, 50)}' is not a byte count`);
    return x;
  };
  const offset = number('offset', 0);
  const length = number('length', bytes);
  if (length !== bytes) throw new FormatError(`${what}: external data length ${length} does not match the ${bytes} bytes its shape needs`);
  if (!readExternal) throw new FormatError(`${what} keeps its data in the external file '${location.slice(0, 200)}', but the model was given as bytes without a way to read other files (pass { readFile })`);
  return readExternal(location, offset, length, what);
}
