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
/** A string from a file, cut for an error message. */
const cut = (s: string, max = 200) => (s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`);

/**
 * Checks the weightsManifest of a model.json (graph or layers), a file from a stranger, before any of
 * it is used: every group has a list of file names and a list of weights, each with a name, a dtype
 * and a shape of non-negative integers.
 */
export function checkWeightsManifest(manifest: unknown, where: string): TfjsWeightsGroup[] {
  if (!Array.isArray(manifest)) throw new FormatError(`${where}: "weightsManifest" must be a list`);
  manifest.forEach((g: unknown, gi) => {
    const at = `${where}: weightsManifest group ${gi}`;
    if (!isObject(g)) throw new FormatError(`${at} is not an object`);
    if (g.paths !== undefined && !isStringList(g.paths)) throw new FormatError(`${at}: "paths" must be a list of file names`);
    if (!Array.isArray(g.weights)) throw new FormatError(`${at}: "weights" must be a list`);
    g.weights.forEach((e: unknown, wi) => {
      if (!isObject(e)) throw new FormatError(`${at}: weight ${wi} is not an object`);
      if (typeof e.name !== 'string') throw new FormatError(`${at}: weight ${wi} has no name`);
      const w = `${at}: weight '${cut(e.name)}'`;
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
        throw new FormatError(`${w}: "shape" must be a list of non-negative integers, got ${cut(String(JSON.stringify(e.shape)))}`);
      }
      if (typeof e.dtype !== 'string') throw new FormatError(`${w}: "dtype" must be a string`);
      if (e.quantization !== undefined && (!isObject(e.quantization) || typeof e.quantization.dtype !== 'string')) {
        throw new FormatError(`${w}: "quantization" must be an object with a "dtype"`);
      }
    });
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
    const at = `${where}: node '${cut(n.name)}' (${cut(n.op)})`;
    if (n.input !== undefined && !isStringList(n.input)) throw new FormatError(`${at}: "input" must be a list of node names`);
    if (n.attr !== undefined && (!isObject(n.attr) || !Object.values(n.attr).every(isObject))) throw new FormatError(`${at}: "attr" must be an object of attribute values`);
  }
  checkWeightsManifest(json.weightsManifest, where);
  const signature = json.signature;
  if (signature !== undefined && !isObject(signature)) throw new FormatError(`${where}: "signature" must be an object`);
  for (const kind of ['inputs', 'outputs'] as const) {
    const sig = signature?.[kind];
    if (sig === undefined) continue;
    if (!isObject(sig)) throw new FormatError(`${where}: signature ${kind} must be an object`);
    for (const [k, v] of Object.entries(sig)) {
      if (!isObject(v) || typeof v.name !== 'string') throw new FormatError(`${where}: signature ${kind.slice(0, -1)} '${cut(k)}' must be an object with a "name"`);
    }
  }
  return j;
}

function decodeBase64(s: unknown, where: string, key: string): string {
  let bin: string;
  try {
    if (typeof s !== 'string') throw new TypeError('not a string');
    bin = atob(s);
  } catch {
    throw new FormatError(`${where}: attribute '${key}' is not valid base64`);
  }
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
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
    if (v !== undefined && !isObject(v)) throw new FormatError(`${this.where}: attribute '${key}' is not an attribute value`);
    return v;
  }
  str(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v?.s !== undefined) return decodeBase64(v.s, this.where, key);
    if (fallback !== undefined) return fallback;
    throw new FormatError(`${this.where}: missing string attribute '${key}'`);
  }
  strs(key: string): string[] {
    const l = this.get(key)?.list?.s ?? [];
    if (!Array.isArray(l)) throw new FormatError(`${this.where}: attribute '${key}' must be a list of strings`);
    return l.map((s) => decodeBase64(s, this.where, key));
  }
  ints(key: string, fallback?: number[]): number[] {
    const v = this.get(key)?.list?.i;
    if (v !== undefined) {
      const out = Array.isArray(v) ? v.map((x) => (typeof x === 'number' || (typeof x === 'string' && /^-?\d+$/.test(x)) ? Number(x) : NaN)) : [NaN];
      if (!out.every(Number.isSafeInteger)) throw new FormatError(`${this.where}: attribute '${key}' must be a list of integers`);
      return out;
    }
    if (fallback !== undefined) return fallback;
    throw new FormatError(`${this.where}: missing integer list attribute '${key}'`);
  }
  float(key: string, fallback: number): number {
    const v = this.get(key)?.f;
    if (v === undefined) return fallback;
    const n = typeof v === 'number' || typeof v === 'string' ? Number(v) : NaN;
    if (Number.isNaN(n)) throw new FormatError(`${this.where}: attribute '${key}' must be a number`);
    return n;
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
  if (s === undefined || (isObject(s) && s.unknownRank)) return null;
  const dims = isObject(s) ? (s.dim ?? []) : null;
  const out = Array.isArray(dims) ? dims.map((d) => (isObject(d) ? (d.size === undefined ? -1 : typeof d.size === 'number' || typeof d.size === 'string' ? Number(d.size) : NaN) : NaN)) : [NaN];
  if (!out.every((d) => Number.isSafeInteger(d) && d >= -1)) throw new FormatError(`${where} is not a valid tensor shape`);
  return out;
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
