/**
 * The part of the ONNX protobuf schema the importer reads, for protobufjs (which does the wire
 * format decoding). Field names and numbers are those of ONNX's onnx.proto (IR version 9; the ONNX
 * project, Apache-2.0), written out here as data; messages and fields we do not use are left out,
 * and protobufjs skips them without reading their contents. Subgraphs (If, Loop, Scan bodies) and
 * non-tensor types are among them: a model that needs them fails on the op, not in the decoder.
 */
import protobuf from 'protobufjs/light.js';
import { FormatError } from '../../runtime/errors.js';

const int64 = 'int64';
const string = 'string';

const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: int64, id: 1 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producerName: { type: string, id: 2 },
            producerVersion: { type: string, id: 3 },
            domain: { type: string, id: 4 },
            modelVersion: { type: int64, id: 5 },
            docString: { type: string, id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadataProps: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        OperatorSetIdProto: { fields: { domain: { type: string, id: 1 }, version: { type: int64, id: 2 } } },
        StringStringEntryProto: { fields: { key: { type: string, id: 1 }, value: { type: string, id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: string, id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            sparseInitializer: { rule: 'repeated', type: 'SparseTensorProto', id: 15 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            valueInfo: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: string, id: 1 },
            output: { rule: 'repeated', type: string, id: 2 },
            name: { type: string, id: 3 },
            opType: { type: string, id: 4 },
            domain: { type: string, id: 7 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: string, id: 1 },
            refAttrName: { type: string, id: 21 },
            type: { type: 'int32', id: 20 },
            f: { type: 'float', id: 2 },
            i: { type: int64, id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: int64, id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
          },
        },
        ValueInfoProto: { fields: { name: { type: string, id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TypeProto: { fields: { tensorType: { type: 'TypeProtoTensor', id: 1 } } },
        TypeProtoTensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } } },
        Dimension: {
          oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
          fields: { dimValue: { type: int64, id: 1 }, dimParam: { type: string, id: 2 } },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: int64, id: 1 },
            dataType: { type: 'int32', id: 2 },
            floatData: { rule: 'repeated', type: 'float', id: 4, options: { packed: true } },
            int32Data: { rule: 'repeated', type: 'int32', id: 5, options: { packed: true } },
            int64Data: { rule: 'repeated', type: int64, id: 7, options: { packed: true } },
            name: { type: string, id: 8 },
            rawData: { type: 'bytes', id: 9 },
            externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            dataLocation: { type: 'int32', id: 14 },
            doubleData: { rule: 'repeated', type: 'double', id: 10, options: { packed: true } },
            uint64Data: { rule: 'repeated', type: 'uint64', id: 11, options: { packed: true } },
          },
        },
        SparseTensorProto: { fields: { dims: { rule: 'repeated', type: int64, id: 3 } } },
      },
    },
  },
};

/** A 64-bit integer as protobufjs decodes it: a number, or a Long when the long package is present. */
export type Int64 = number | { low: number; high: number; unsigned?: boolean; toNumber(): number };

export interface OnnxStringEntry {
  key?: string;
  value?: string;
}

export interface OnnxTensorProto {
  dims?: Int64[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Int64[];
  name?: string;
  rawData?: Uint8Array;
  externalData?: OnnxStringEntry[];
  dataLocation?: number;
  doubleData?: number[];
  uint64Data?: Int64[];
}

export interface OnnxAttributeProto {
  name?: string;
  refAttrName?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: OnnxTensorProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
}

export interface OnnxNodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: OnnxAttributeProto[];
}

export interface OnnxDimension {
  dimValue?: Int64;
  dimParam?: string;
}

export interface OnnxValueInfoProto {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: OnnxDimension[] } } };
}

export interface OnnxGraphProto {
  node?: OnnxNodeProto[];
  name?: string;
  initializer?: OnnxTensorProto[];
  sparseInitializer?: unknown[];
  input?: OnnxValueInfoProto[];
  output?: OnnxValueInfoProto[];
  valueInfo?: OnnxValueInfoProto[];
}

export interface OnnxModelProto {
  irVersion?: Int64;
  opsetImport?: { domain?: string; version?: Int64 }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: OnnxGraphProto;
  metadataProps?: OnnxStringEntry[];
}

/** ONNX TensorProto.DataType codes the importer reads. */
export const DATA_TYPES = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

/** Names of ONNX data types, for messages. */
export const DATA_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'undefined'], [1, 'float32'], [2, 'uint8'], [3, 'int8'], [4, 'uint16'], [5, 'int16'], [6, 'int32'], [7, 'int64'], [8, 'string'],
  [9, 'bool'], [10, 'float16'], [11, 'float64'], [12, 'uint32'], [13, 'uint64'], [14, 'complex64'], [15, 'complex128'], [16, 'bfloat16'],
  [17, 'float8e4m3fn'], [18, 'float8e4m3fnuz'], [19, 'float8e5m2'], [20, 'float8e5m2fnuz'], [21, 'uint4'], [22, 'int4'],
]); // prettier-ignore

let root: protobuf.Root | null = null;
const type = (name: string) => (root ??= protobuf.Root.fromJSON(SCHEMA)).lookupType(`onnx.${name}`);

/**
 * Decodes a serialised ModelProto. Anything the decoder refuses (truncated data, a bad wire type,
 * nesting too deep for the stack) is a FormatError.
 */
export function decodeModelProto(bytes: Uint8Array, where: string): OnnxModelProto {
  try {
    return type('ModelProto').decode(bytes) as unknown as OnnxModelProto;
  } catch (e) {
    const why = e instanceof RangeError && /call stack/.test(e.message) ? 'it nests messages too deeply' : (e as Error).message;
    throw new FormatError(`${where} is not a valid ONNX model (protobuf decoding failed: ${why})`);
  }
}

/** Decodes a serialised TensorProto (the .pb files of ONNX's test data hold one each). */
export function decodeTensorProto(bytes: Uint8Array, where: string): OnnxTensorProto {
  try {
    return type('TensorProto').decode(bytes) as unknown as OnnxTensorProto;
  } catch (e) {
    throw new FormatError(`${where} is not a valid ONNX tensor (${(e as Error).message})`);
  }
}

/** Encodes a ModelProto (from plain objects with this schema's field names), e.g. to write a model. */
export function encodeModelProto(model: OnnxModelProto): Uint8Array {
  const t = type('ModelProto');
  return t.encode(t.fromObject(model as Record<string, unknown>)).finish();
}

/** An int64 field as a number (exact up to 2^53; larger values lose precision but keep their sign and size). */
export function toNumber(v: Int64 | bigint | string | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' || typeof v === 'string') return Number(v);
  return v.toNumber();
}
