/**
 * The TF.js graph model.json format (as tensorflowjs_converter writes it): its types, the checks
 * a file from a stranger must pass before anything else reads it, and typed access to node
 * attributes.
 */
import { FormatError } from '../../runtime/errors.js';
import { shapeElements } from '../graph/host.js';

/** One attribute value of a node, as TF's protobuf JSON writes it. */
export interface TfjsAttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: TfjsShapeProto;
  tensor?: { dtype?: string; tensorShape?: TfjsShapeProto };
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; b?: boolean[]; type?: string[]; shape?: TfjsShapeProto[] };
  func?: unknown;
}

export interface TfjsShapeProto {
  dim?: { size?: string | number }[];
  unknownRank?: boolean;
}

export interface TfjsNode {
  name: string;
  op: string;
  /** Data inputs 'node' or 'node:k' (output k), and control inputs '^node' (ignored). */
  input?: string[];
  attr?: Record<string, TfjsAttrValue>;
  device?: string;
}

export interface TfjsWeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; min?: number; scale?: number; original_dtype?: string };
}

export interface TfjsWeightsGroup {
  paths: string[];
  weights: TfjsWeightEntry[];
}

export interface TfjsModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology: { node: TfjsNode[]; library?: unknown; versions?: unknown } | Record<string, unknown>;
  weightsManifest: TfjsWeightsGroup[];
  signature?: {
    inputs?: Record<string, { name: string; tensorShape?: TfjsShapeProto }>;
    outputs?: Record<string, { name: string; tensorShape?: TfjsShapeProto }>;
  };
  userDefinedMetadata?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/**
 * Checks the weightsManifest of a model.json (graph or layers): groups with a list of path strings
 * and a list of entries, each with a name, a shape of non-negative integers and a dtype string.
 */
export function checkWeightsManifest(manifest: unknown, where: string): TfjsWeightsGroup[] {
  if (!Array.isArray(manifest)) throw new FormatError(`${where}: no weightsManifest list`);
  manifest.forEach((g: unknown, k) => {
    if (!isObject(g) || !Array.isArray(g.weights)) throw new FormatError(`${where}: weightsManifest group ${k} has no weights list`);
    if (g.paths !== undefined && !isStringList(g.paths)) throw new FormatError(`${where}: weightsManifest group ${k}: 'paths' must be a list of file names`);
    for (const e of g.weights as unknown[]) {
      if (!isObject(e) || typeof e.name !== 'string' || typeof e.dtype !== 'string') throw new FormatError(`${where}: a weight entry of group ${k} lacks a name or a dtype`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
        throw new FormatError(`${where}: weight '${e.name.slice(0, 200)}' has an invalid shape ${JSON.stringify(e.shape)?.slice(0, 200)}`);
      }
      if (e.quantization !== undefined && !isObject(e.quantization)) throw new FormatError(`${where}: weight '${e.name.slice(0, 200)}' has an invalid quantization`);
    }
  });
  return manifest as TfjsWeightsGroup[];
}

/**
 * Checks that a parsed model.json is a graph model whose fields have the types the importer reads
 * (a layers model gets an error that says so).
 */
export function checkModelJson(json: unknown, where: string): TfjsModelJson {
  if (!isObject(json)) throw new FormatError(`${where}: a TF.js model.json must be an object`);
  const j = json as unknown as TfjsModelJson;
  const topology = json.modelTopology;
  if (j.format === 'layers-model' || (isObject(topology) && ('model_config' in topology || 'class_name' in topology))) {
    throw new FormatError(`${where} is a TF.js layers model (Keras); loadTfjsGraphModel reads graph models ("format": "graph-model") only; use loadTfjsLayersModel`);
  }
  if (!isObject(topology) || !Array.isArray(topology.node)) throw new FormatError(`${where}: not a TF.js graph model (no modelTopology.node list)`);
  for (const n of topology.node as unknown[]) {
    if (!isObject(n) || typeof n.name !== 'string' || typeof n.op !== 'string') throw new FormatError(`${where}: a graph node lacks a name or an op`);
    if (n.input !== undefined && !isStringList(n.input)) throw new FormatError(`${where}: node '${n.name.slice(0, 200)}': 'input' must be a list of node names`);
    if (n.attr !== undefined && !isObject(n.attr)) throw new FormatError(`${where}: node '${n.name.slice(0, 200)}': 'attr' must be an object`);
  }
  checkWeightsManifest(json.weightsManifest, where);
  if (j.signature !== undefined && !isObject(j.signature)) throw new FormatError(`${where}: 'signature' must be an object`);
  for (const side of ['inputs', 'outputs'] as const) {
    const s = (j.signature as Record<string, unknown> | undefined)?.[side];
    if (s === undefined) continue;
    if (!isObject(s) || !Object.values(s).every((v) => isObject(v) && typeof v.name === 'string')) throw new FormatError(`${where}: signature.${side} must map names to { name }`);
  }
  return j;
}

function decodeBase64(s: unknown, where: string): string {
  if (typeof s !== 'string') throw new FormatError(`${where} is not base64 text`);
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new FormatError(`${where} is not valid base64`);
  }
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

function toNumber(v: unknown, where: string, key: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new FormatError(`${where}: attribute '${key}' holds ${JSON.stringify(v)?.slice(0, 100)}, not a number`);
  return n;
}

/** Typed, checked access to a node's attributes (a malformed value is a FormatError). */
export class Attrs {
  constructor(
    private readonly node: TfjsNode,
    private readonly where: string,
  ) {}
  private get(key: string): TfjsAttrValue | undefined {
    const a = this.node.attr;
    const v = a && Object.hasOwn(a, key) ? a[key] : undefined;
    if (v !== undefined && !isObject(v)) throw new FormatError(`${this.where}: attribute '${key}' is not an object`);
    return v;
  }
  str(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v?.s !== undefined) return decodeBase64(v.s, `${this.where}: attribute '${key}'`);
    if (fallback !== undefined) return fallback;
    throw new FormatError(`${this.where}: missing string attribute '${key}'`);
  }
  strs(key: string): string[] {
    const l = this.get(key)?.list?.s ?? [];
    if (!Array.isArray(l)) throw new FormatError(`${this.where}: attribute '${key}' must hold a list`);
    return l.map((s) => decodeBase64(s, `${this.where}: attribute '${key}'`));
  }
  ints(key: string, fallback?: number[]): number[] {
    const v = this.get(key)?.list?.i;
    if (v !== undefined) {
      if (!Array.isArray(v)) throw new FormatError(`${this.where}: attribute '${key}' must hold a list`);
      return v.map((x) => {
        const n = toNumber(x, this.where, key);
        if (!Number.isSafeInteger(n)) throw new FormatError(`${this.where}: attribute '${key}' holds ${n}, not an integer`);
        return n;
      });
    }
    if (fallback !== undefined) return fallback;
    throw new FormatError(`${this.where}: missing integer list attribute '${key}'`);
  }
  float(key: string, fallback: number): number {
    const v = this.get(key)?.f;
    return v === undefined ? fallback : toNumber(v, this.where, key);
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key)?.b;
    if (v !== undefined && typeof v !== 'boolean') throw new FormatError(`${this.where}: attribute '${key}' must be true or false`);
    return v === undefined ? fallback : v;
  }
  shape(key: string): number[] | null {
    return shapeOf(this.get(key)?.shape, `${this.where}: attribute '${key}'`);
  }
}

/** A TensorShapeProto as numbers (−1 unknown), or null for an unknown rank. */
export function shapeOf(s: TfjsShapeProto | undefined, where: string): number[] | null {
  if (!s || s.unknownRank) return null;
  if (!isObject(s) || (s.dim !== undefined && !Array.isArray(s.dim))) throw new FormatError(`${where}: a shape must be { dim: [...] }`);
  return (s.dim ?? []).map((d) => {
    const n = isObject(d) && d.size !== undefined ? toNumber(d.size, where, 'size') : -1;
    if (!Number.isSafeInteger(n) || n < -1) throw new FormatError(`${where}: a shape holds the dimension ${n}`);
    return n;
  });
}

/** A data input 'node' or 'node:k'; null for a control input '^node'. */
export function parseInput(s: string): { node: string; index: number } | null {
  if (s.startsWith('^')) return null;
  const m = /^(.*):(\d+)$/.exec(s);
  return m ? { node: m[1]!, index: Number(m[2]) } : { node: s, index: 0 };
}

export const stripIndex = (s: string): string => s.replace(/:0$/, '');

/** The bytes an entry occupies in its shard, by its (quantised) dtype. */
export function entryBytes(e: TfjsWeightEntry, where: string): number {
  const n = shapeElements(e.shape);
  const dtype = e.quantization ? e.quantization.dtype : e.dtype;
  const b = dtype === 'float32' || dtype === 'int32' ? 4 : dtype === 'uint16' || dtype === 'float16' ? 2 : dtype === 'uint8' || dtype === 'bool' ? 1 : undefined;
  if (b === undefined || (!e.quantization && !['float32', 'int32', 'bool'].includes(e.dtype))) {
    throw new FormatError(`${where}: weight '${e.name}' has dtype '${e.dtype}'${e.quantization ? ` quantised as '${dtype}'` : ''}, which is not supported (float32, int32, bool; quantised uint8, uint16, float16)`);
  }
  return n * b;
}
