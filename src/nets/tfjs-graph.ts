/**
 * TF.js graph models (the model.json and *.bin weight shards that tensorflowjs_converter writes)
 * imported onto our kernels and autodiff, so that every saliency method runs on them and can hook
 * any node of the graph by its name.
 *
 * Layout: TF graphs are NHWC; we keep every rank-4 value NCHW (our kernels' layout) and translate
 * once, at load time: conv filters [kh, kw, in, out] → [out, in, kh, kw]; depthwise filters
 * [kh, kw, C, m] → a grouped conv [C·m, 1, kh, kw] with groups = C; NHWC axis attributes → NCHW
 * axes; rank-4 constants transposed. A Reshape or Squeeze of a rank-4 value first puts it back in
 * NHWC order, because TF flattens H, W, C.
 *
 * Fused activations (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul) run through our
 * conv2d/linear `activation` option, whose backward goes through the tape's activation rules: guided
 * backprop and DeconvNet change them like separate ReLUs.
 *
 * Supported ops (forward and backward): see SUPPORTED_TFJS_OPS. Constants must be graph Consts
 * (weights from the manifest); nodes computed from constants alone are not folded. An unsupported
 * op gets an ArgumentError naming it and its node; a graph whose post-processing uses such ops
 * (CenterNet's TopKV2, GatherV2, …) can still be imported up to the outputs that need none of
 * them, with `{ outputs }` (see centernet.ts for CenterNet's post-processing in TypeScript).
 *
 * Weights: float32, int32 and bool, or quantised to uint8/uint16 (value = q·scale + min) or
 * float16. Each group's bytes are checked against the manifest before decoding, and a NaN in a
 * decoded weight is reported as a corrupt file.
 *
 * Browser-safe: files are read with fetch, or in Node with node:fs (hidden from bundlers).
 */
import * as ops from '../autodiff/ops/index.js';
import { nameOutput, recordOp, registerBackward } from '../autodiff/tape.js';
import { samePadding, type Activation } from '../kernels/common.js';
import { slice as sliceKernel, sliceBackward } from '../kernels/shape.js';
import { ArgumentError, FormatError, ShapeError, formatShape } from '../runtime/errors.js';
import { readResponse } from '../runtime/fetch.js';
import { checkTensorElements } from '../runtime/limits.js';
import type { Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import type { ExplainableModel } from '../saliency/core.js';
import type { Layer } from './model.js';
import type { LayerSpec, LayerType } from './spec.js';
import type { ForwardOptions } from './types.js';

// -----------------------------------------------------------------------------------------------
// The model.json format

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

/** A weight on the CPU, dequantised. */
export interface HostTensor {
  dtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * The weights of a model.json: every shard's bytes concatenated in manifest order (as
 * `tf.io.fromMemory` takes them), or a function that returns the bytes of one shard by its path.
 */
export type TfjsWeightSource = ArrayBuffer | Uint8Array | ((path: string) => Promise<ArrayBuffer | Uint8Array>);

export interface TfjsGraphSource {
  modelJson: object;
  weights: TfjsWeightSource;
}

export interface TfjsGraphOptions {
  /**
   * The graph nodes to compute (names, ':0' allowed). Default: the signature's outputs, else the
   * nodes nothing consumes. The first is the one `forward` returns.
   */
  outputs?: string[];
  /** A name for messages. Default: the model.json file name without '.json', else 'tfjs-graph'. */
  name?: string;
  /** Per-sample input shape in our layout ([C, H, W]) when the graph's placeholder leaves it open. */
  inputShape?: number[];
  /** Names of the outputs of the main output, e.g. class names. */
  classNames?: string[];
}

// -----------------------------------------------------------------------------------------------
// Attributes

function decodeBase64(s: string, where = 'model.json', key = '?'): string {
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

class Attrs {
  constructor(
    private readonly node: TfjsNode,
    private readonly where: string,
  ) {}
  private get(key: string): TfjsAttrValue | undefined {
    return this.node.attr?.[key];
  }
  str(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v?.s !== undefined) return decodeBase64(v.s, this.where, key);
    if (fallback !== undefined) return fallback;
    throw new ArgumentError(`${this.where}: missing string attribute '${key}'`);
  }
  strs(key: string): string[] {
    const list = this.get(key)?.list?.s ?? [];
    if (!Array.isArray(list)) throw new FormatError(`${this.where}: attribute '${key}' must be a list of strings`);
    return list.map((v) => decodeBase64(v, this.where, key));
  }
  ints(key: string, fallback?: number[]): number[] {
    const v = this.get(key)?.list?.i;
    if (v) {
      const out = Array.isArray(v) ? v.map(Number) : [NaN];
      if (!out.every(Number.isSafeInteger)) throw new FormatError(`${this.where}: attribute '${key}' must be a list of integers`);
      return out;
    }
    if (fallback !== undefined) return fallback;
    throw new ArgumentError(`${this.where}: missing integer list attribute '${key}'`);
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
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new FormatError(`${this.where}: attribute '${key}' must be true or false`);
    return v;
  }
  shape(key: string): number[] | null {
    const s = this.get(key)?.shape;
    if (!s || s.unknownRank) return null;
    const dims = s.dim ?? [];
    const out = Array.isArray(dims) ? dims.map((d) => (d && typeof d === 'object' ? Number(d.size ?? -1) : NaN)) : [NaN];
    if (!out.every((d) => Number.isSafeInteger(d) && d >= -1)) throw new FormatError(`${this.where}: attribute '${key}' is not a valid tensor shape`);
    return out;
  }
}

// -----------------------------------------------------------------------------------------------
// Weights

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

let halfTable: Float32Array | null = null;

/** IEEE half → float, by table. */
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    t[h] = e === 0 ? sign * f * 2 ** -24 : e === 31 ? (f ? NaN : sign * Infinity) : sign * (1 + f / 1024) * 2 ** (e - 15);
  }
  return (halfTable = t);
}

function entryBytes(e: TfjsWeightEntry, where: string): number {
  const n = e.shape.reduce((a, b) => a * b, 1);
  const dtype = e.quantization ? e.quantization.dtype : e.dtype;
  const b = BYTES[dtype];
  if (b === undefined || (!e.quantization && !['float32', 'int32', 'bool'].includes(e.dtype))) {
    throw new ArgumentError(`${where}: weight '${e.name}' has dtype '${e.dtype}'${e.quantization ? ` quantised as '${dtype}'` : ''}, which is not supported (float32, int32, bool; quantised uint8, uint16, float16)`);
  }
  if (!Number.isInteger(n) || n < 0) throw new ArgumentError(`${where}: weight '${e.name}' has an invalid shape ${JSON.stringify(e.shape)}`);
  return n * b;
}

/** Copies `n` values of `bytes` at `offset` into an aligned typed array. */
function view<T extends Float32Array | Int32Array | Uint16Array | Uint8Array>(
  Ctor: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
  bytes: Uint8Array,
  offset: number,
  n: number,
): T {
  const copy = bytes.slice(offset, offset + n * Ctor.BYTES_PER_ELEMENT);
  return new Ctor(copy.buffer);
}

function decodeEntry(e: TfjsWeightEntry, bytes: Uint8Array, offset: number, file: string): HostTensor {
  const n = e.shape.reduce((a, b) => a * b, 1);
  const q = e.quantization;
  let values: Float32Array;
  if (!q) {
    if (e.dtype === 'float32') values = view(Float32Array, bytes, offset, n);
    else if (e.dtype === 'int32') return { dtype: 'int32', shape: [...e.shape], data: view(Int32Array, bytes, offset, n) };
    else return { dtype: 'bool', shape: [...e.shape], data: Int32Array.from(bytes.subarray(offset, offset + n)) };
  } else if (q.dtype === 'float16') {
    const table = halfToFloat();
    const h = view(Uint16Array, bytes, offset, n);
    values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = table[h[i]!]!;
  } else {
    const { min, scale } = q;
    if (typeof min !== 'number' || typeof scale !== 'number' || !Number.isFinite(min) || !Number.isFinite(scale)) {
      throw new ArgumentError(`${file}: weight '${e.name}' is quantised to ${q.dtype} without a finite min and scale`);
    }
    const raw = q.dtype === 'uint8' ? bytes.subarray(offset, offset + n) : view(Uint16Array, bytes, offset, n);
    values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = raw[i]! * scale + min;
    if (e.dtype === 'int32') return { dtype: 'int32', shape: [...e.shape], data: Int32Array.from(values, Math.round) };
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new ArgumentError(`${file}: weight '${e.name}' holds ${values[i]} at index ${i}: the weights file is corrupt`);
    }
  }
  return { dtype: 'float32', shape: [...e.shape], data: values };
}

/**
 * Decodes the weights of a model.json. `shards[g][k]` holds the bytes of file k of manifest group g.
 * Each group's byte count is checked against the manifest first: a truncated or padded file gets an
 * ArgumentError that names it.
 */
export function decodeTfjsWeights(manifest: readonly TfjsWeightsGroup[], shards: readonly (readonly Uint8Array[])[], source = 'model.json'): Map<string, HostTensor> {
  checkManifest(manifest, source);
  const out = new Map<string, HostTensor>();
  manifest.forEach((group, g) => {
    const files = group.paths ?? [];
    const parts = shards[g] ?? [];
    const need = group.weights.reduce((a, e) => a + entryBytes(e, source), 0);
    const have = parts.reduce((a, p) => a + p.byteLength, 0);
    if (have !== need) {
      // Converter shards all have the same size but the last: blame the odd one out.
      const sizes = parts.map((p) => p.byteLength);
      const full = Math.max(...sizes);
      let bad = have > need ? sizes.indexOf(full) : sizes.findIndex((b, k) => k < sizes.length - 1 && b < full);
      if (bad < 0) bad = parts.length - 1;
      const name = files[bad] ?? `weight group ${g}`;
      const others = files.length > 1 ? ` (together with ${files.filter((_, k) => k !== bad).join(', ')})` : '';
      throw new ArgumentError(
        `weights file '${name}'${others} holds ${have} bytes, but ${source} lists ${need} bytes of weights for it: the file is ${have < need ? 'truncated' : 'corrupt (too long)'}`,
      );
    }
    const bytes = parts.length === 1 ? parts[0]! : concatBytes(parts);
    let offset = 0;
    const file = files.join(', ') || source;
    for (const e of group.weights) {
      out.set(e.name, decodeEntry(e, bytes, offset, file));
      offset += entryBytes(e, source);
    }
  });
  return out;
}

/**
 * Checks the types of a weightsManifest's fields (a file from a stranger) before any of them is
 * used: every group has a list of file names and a list of weights, each with a name, a dtype and
 * a shape of non-negative integers whose size is within the tensor limit.
 */
function checkManifest(manifest: unknown, where: string): asserts manifest is TfjsWeightsGroup[] {
  if (!Array.isArray(manifest)) throw new FormatError(`${where}: "weightsManifest" must be a list`);
  manifest.forEach((g: unknown, gi) => {
    const at = `${where}: weightsManifest group ${gi}`;
    if (!g || typeof g !== 'object') throw new FormatError(`${at} is not an object`);
    const { paths, weights } = g as { paths?: unknown; weights?: unknown };
    if (paths !== undefined && (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string'))) {
      throw new FormatError(`${at}: "paths" must be a list of file names`);
    }
    if (!Array.isArray(weights)) throw new FormatError(`${at}: "weights" must be a list`);
    weights.forEach((e: unknown, wi) => {
      if (!e || typeof e !== 'object') throw new FormatError(`${at}: weight ${wi} is not an object`);
      const { name, shape, dtype, quantization } = e as { name?: unknown; shape?: unknown; dtype?: unknown; quantization?: unknown };
      if (typeof name !== 'string') throw new FormatError(`${at}: weight ${wi} has no name`);
      const w = `${at}: weight '${cut(name)}'`;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw new FormatError(`${w}: "shape" must be a list of non-negative integers, got ${cut(String(JSON.stringify(shape)))}`);
      }
      checkTensorElements(shape.reduce((a: number, b: number) => a * b, 1), w);
      if (typeof dtype !== 'string') throw new FormatError(`${w}: "dtype" must be a string`);
      if (quantization !== undefined && (!quantization || typeof quantization !== 'object' || typeof (quantization as { dtype?: unknown }).dtype !== 'string')) {
        throw new FormatError(`${w}: "quantization" must be an object with a "dtype"`);
      }
    });
  });
}

/** A string from a file, cut for an error message. */
const cut = (s: string, max = 200) => (s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`);

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const asBytes = (b: ArrayBuffer | Uint8Array) => (b instanceof Uint8Array ? b : new Uint8Array(b));

// -----------------------------------------------------------------------------------------------
// Loading

const isNode = () => typeof process !== 'undefined' && !!process.versions?.node;

async function readFileBytes(path: string | URL, what: string): Promise<Uint8Array> {
  const filesName = '../runtime/files.js'; // hidden from bundlers: only Node reads files
  const files = (await import(/* @vite-ignore */ filesName)) as typeof import('../runtime/files.js');
  const urlName = 'node:url';
  const file = typeof path === 'string' ? path : ((await import(/* @vite-ignore */ urlName)) as typeof import('node:url')).fileURLToPath(path);
  try {
    // A regular file only (not /dev/zero behind a symlink), refused over maxModelBytes before it is read.
    return files.readModelFile(file, undefined, what);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ArgumentError(`${what} '${file}' does not exist`);
    throw e;
  }
}

async function fetchBytes(url: URL, what: string): Promise<Uint8Array> {
  if (url.protocol === 'file:') return readFileBytes(url, what);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ArgumentError(`cannot fetch ${what} ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new ArgumentError(`cannot fetch ${what} ${url}: HTTP ${res.status}`);
  return readResponse(res, `${what} ${url}`);
}

function parseJson(bytes: Uint8Array, where: string): object {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as object;
  } catch (e) {
    throw new ArgumentError(`${where} is not valid JSON (${(e as Error).message})`);
  }
}

/** A model.json read from a path, URL or memory, with a way to read the weights it lists. */
export interface TfjsArtifacts {
  json: object;
  /** The path or URL, for messages ('model.json' for one given in memory). */
  where: string;
  /** The file name without '.json', when there is one. */
  name?: string;
  /** Reads, checks and decodes the weights of `manifest` (dequantised, in TF's layout). */
  weights(manifest: readonly TfjsWeightsGroup[]): Promise<Map<string, HostTensor>>;
}

/**
 * Reads a TF.js model.json (graph or layers model): a path (Node) or URL (fetched; relative URLs
 * resolve against the page), or the parsed JSON with its weights. Shards are read only when
 * `weights` is called, so that topology errors come first.
 */
export async function readTfjsArtifacts(source: string | URL | TfjsGraphSource, what = 'loadTfjsGraphModel'): Promise<TfjsArtifacts> {
  let json: object;
  let readShard: (path: string) => Promise<Uint8Array>;
  let all: Uint8Array | null = null;
  let where = 'model.json';
  let name: string | undefined;
  if (typeof source === 'string' || source instanceof URL) {
    const text = source.toString();
    const isUrl = source instanceof URL || /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
    where = text;
    const base = text.replace(/[?#].*$/, '');
    name = base.slice(Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\')) + 1).replace(/\.json$/i, '') || undefined;
    if (!isUrl && isNode()) {
      const dir = text.slice(0, Math.max(text.lastIndexOf('/'), text.lastIndexOf('\\')) + 1);
      json = parseJson(await readFileBytes(text, 'model file'), text);
      readShard = (p) => readFileBytes(dir + p, 'weights file');
    } else {
      const url = source instanceof URL ? source : new URL(text, (globalThis as { location?: { href: string } }).location?.href);
      json = parseJson(await fetchBytes(url, 'model file'), text);
      readShard = (p) => fetchBytes(new URL(p, url), 'weights file');
    }
  } else if (source && typeof source === 'object' && 'modelJson' in source) {
    json = source.modelJson;
    const w = source.weights;
    if (typeof w === 'function') readShard = async (p) => asBytes(await w(p));
    else if (w instanceof ArrayBuffer || w instanceof Uint8Array) {
      all = asBytes(w);
      readShard = async () => new Uint8Array(0);
    } else throw new ArgumentError(`${what}: weights must be an ArrayBuffer, a Uint8Array or a function from a shard path to its bytes`);
  } else {
    throw new ArgumentError(`${what}: source must be a model.json path or URL, or { modelJson, weights }`);
  }
  const weights = async (manifest: readonly TfjsWeightsGroup[]) => {
    checkManifest(manifest, where);
    let shards: Uint8Array[][];
    if (all) {
      const need = manifest.map((g) => g.weights.reduce((a, e) => a + entryBytes(e, where), 0));
      const total = need.reduce((a, b) => a + b, 0);
      if (all.byteLength !== total) {
        throw new ArgumentError(`the weight data holds ${all.byteLength} bytes, but ${where} lists ${total} bytes of weights: it is ${all.byteLength < total ? 'truncated' : 'corrupt (too long)'}`);
      }
      let at = 0;
      shards = need.map((n) => [all!.subarray(at, (at += n))]);
    } else {
      shards = await Promise.all(manifest.map((g) => Promise.all((g.paths ?? []).map((p) => readShard(p)))));
    }
    return decodeTfjsWeights(manifest, shards, where);
  };
  return { json, where, name, weights };
}

/**
 * Loads a TF.js graph model: a model.json path (Node) or URL (fetched; relative URLs resolve
 * against the page), or the parsed JSON with its weights. The weights are dequantised and moved to
 * the GPU in our layout; the returned model runs on our kernels and autodiff.
 */
export async function loadTfjsGraphModel(gpu: Gpu, source: string | URL | TfjsGraphSource, options: TfjsGraphOptions = {}): Promise<TfjsGraphModel> {
  const artifacts = await readTfjsArtifacts(source);
  const model = checkModelJson(artifacts.json, artifacts.where);
  const graph = new GraphDef(model, { ...options, name: options.name ?? artifacts.name ?? 'tfjs-graph' }); // topology errors before reading weights
  return graph.build(gpu, await artifacts.weights(model.weightsManifest));
}

function checkModelJson(json: unknown, where: string): TfjsModelJson {
  const j = json as TfjsModelJson;
  if (!j || typeof j !== 'object') throw new ArgumentError(`${where}: a TF.js model.json must be an object`);
  const topology = j.modelTopology && typeof j.modelTopology === 'object' ? j.modelTopology : null;
  if (j.format === 'layers-model' || (topology && 'model_config' in topology) || (topology && 'class_name' in topology)) {
    throw new ArgumentError(`${where} is a TF.js layers model (Keras); loadTfjsGraphModel reads graph models ("format": "graph-model") only; use loadTfjsLayersModel`);
  }
  if (!j.modelTopology || !Array.isArray((j.modelTopology as { node?: unknown }).node)) {
    throw new ArgumentError(`${where}: not a TF.js graph model (no modelTopology.node list)`);
  }
  if (!Array.isArray(j.weightsManifest)) throw new ArgumentError(`${where}: no weightsManifest`);
  for (const g of j.weightsManifest) {
    if (!g || !Array.isArray(g.weights)) throw new ArgumentError(`${where}: a weightsManifest group has no weights list`);
  }
  checkManifest(j.weightsManifest, where);
  // The types of the node fields the graph code reads.
  for (const n of (j.modelTopology as { node: unknown[] }).node) {
    if (!n || typeof n !== 'object') continue; // GraphDef reports it
    const { name, op, input, attr } = n as { name?: unknown; op?: unknown; input?: unknown; attr?: unknown };
    const at = `${where}: node '${cut(String(name))}' (${cut(String(op))})`;
    if (input !== undefined && (!Array.isArray(input) || !input.every((i) => typeof i === 'string'))) throw new FormatError(`${at}: "input" must be a list of node names`);
    if (attr !== undefined && (!attr || typeof attr !== 'object' || Array.isArray(attr) || !Object.values(attr).every((v) => v && typeof v === 'object'))) {
      throw new FormatError(`${at}: "attr" must be an object of attribute values`);
    }
  }
  for (const kind of ['inputs', 'outputs'] as const) {
    const sig = (j.signature as Record<string, unknown> | undefined)?.[kind];
    if (sig === undefined) continue;
    if (!sig || typeof sig !== 'object') throw new FormatError(`${where}: signature ${kind} must be an object`);
    for (const [k, v] of Object.entries(sig)) {
      if (!v || typeof v !== 'object' || typeof (v as { name?: unknown }).name !== 'string') {
        throw new FormatError(`${where}: signature ${kind.slice(0, -1)} '${cut(k)}' must be an object with a "name"`);
      }
    }
  }
  return j;
}

// -----------------------------------------------------------------------------------------------
// Layout helpers

/** Our shape of a TF shape: rank-4 NHWC → NCHW. */
function ours(shape: readonly number[]): number[] {
  return shape.length === 4 ? [shape[0]!, shape[3]!, shape[1]!, shape[2]!] : [...shape];
}

/** Our axis of TF axis `a` of a value of rank `rank`. */
function ourAxis(a: number, rank: number): number {
  const axis = a < 0 ? a + rank : a;
  return rank === 4 ? [0, 2, 3, 1][axis]! : axis;
}

/** A host tensor with its axes permuted: out.shape[i] = shape[perm[i]]. */
function permuteHost(h: HostTensor, perm: readonly number[]): HostTensor {
  const shape = perm.map((p) => h.shape[p]!);
  const rank = h.shape.length;
  const strides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= h.shape[i]!;
  }
  const src = perm.map((p) => strides[p]!);
  const out = h.data instanceof Float32Array ? new Float32Array(h.data.length) : new Int32Array(h.data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let at = 0;
    for (let d = 0; d < rank; d++) at += idx[d]! * src[d]!;
    out[o] = h.data[at]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { dtype: h.dtype, shape, data: out };
}

/** A constant in our layout for a value of rank `rank` (padded with leading 1s first, as TF broadcasts). */
function hostInLayout(h: HostTensor, rank: number): HostTensor {
  const padded = { ...h, shape: [...new Array<number>(Math.max(0, rank - h.shape.length)).fill(1), ...h.shape] };
  return rank === 4 ? permuteHost(padded, [0, 3, 1, 2]) : padded;
}

/** A rank-4 NCHW tensor in NHWC order (a view when that moves only singleton axes). */
async function toTfOrder(t: Tensor): Promise<Tensor> {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  return c === 1 || h * w === 1 ? t.reshape([n, h, w, c]) : ops.transpose(t, [0, 2, 3, 1]);
}

/** A rank-4 NHWC tensor in our NCHW order. */
async function fromTfOrder(t: Tensor): Promise<Tensor> {
  const [n, h, w, c] = t.shape as [number, number, number, number];
  return c === 1 || h * w === 1 ? t.reshape([n, c, h, w]) : ops.transpose(t, [0, 3, 1, 2]);
}

/** Runs f on a temporary and disposes it. */
async function using<T>(t: Tensor, f: (t: Tensor) => Promise<T>): Promise<T> {
  try {
    return await f(t);
  } finally {
    t.dispose();
  }
}

/** TF broadcasting of static shapes (−1: the batch, unknown). */
function broadcastTf(a: readonly number[], b: readonly number[], where: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (x === -1 || y === -1) out.push(x === -1 ? y : x);
    else throw new ShapeError(`${where}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
  }
  return out;
}

// Zero padding (TF Pad): the input placed in zeros; its gradient is the matching slice.
async function pad(x: Tensor, padded: readonly number[], begin: readonly number[]): Promise<Tensor> {
  const y = await sliceBackward(x, padded, begin);
  recordOp(x.gpu, 'tfjs.pad', [x], y, { begin: [...begin], shape: [...x.shape] });
  return y;
}

registerBackward('tfjs.pad', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { begin, shape } = ctx.saved as { begin: number[]; shape: number[] };
  return [await sliceKernel(dy, begin, shape)];
});

// -----------------------------------------------------------------------------------------------
// Ops

type Value = { kind: 'const'; host: HostTensor } | { kind: 'runtime'; shape: number[] };

interface PrepareContext {
  node: TfjsNode;
  attrs: Attrs;
  /** "node 'name' (Op)" for messages. */
  where: string;
  inputs: Value[];
  /** Uploads a constant (kept until the model is disposed). */
  upload(h: HostTensor, shape?: number[]): Tensor;
  /** The batch size the graph declares, for reshapes that spell it out (1 if open). */
  staticBatch: number;
}

interface Prepared {
  /** TF shape of the output, −1 for the batch. */
  shape: number[];
  /** args[i]: the tensor of input i when it is a runtime value (undefined for constants). */
  run(args: (Tensor | undefined)[]): Promise<Tensor>;
  type?: string;
  spec?: Record<string, unknown>;
  params?: Record<string, Tensor>;
}

type OpImpl = (c: PrepareContext) => Prepared;

function runtimeInput(c: PrepareContext, i: number, rank?: number): number[] {
  const v = c.inputs[i];
  if (!v) throw new ArgumentError(`${c.where}: missing input ${i}`);
  if (v.kind !== 'runtime') throw new ArgumentError(`${c.where}: input ${i} is a constant; only computed values are supported there`);
  if (rank !== undefined && v.shape.length !== rank) {
    throw new ShapeError(`${c.where}: input ${i} must have rank ${rank} (TF shape), got ${formatShape(v.shape)}`);
  }
  return v.shape;
}

function constInput(c: PrepareContext, i: number, what: string): HostTensor {
  const v = c.inputs[i];
  if (!v || v.kind !== 'const') throw new ArgumentError(`${c.where}: the ${what} (input ${i}) must be a constant`);
  return v.host;
}

function checkNhwc(c: PrepareContext): void {
  const f = c.attrs.str('data_format', 'NHWC');
  if (f !== 'NHWC') throw new ArgumentError(`${c.where}: data_format '${f}' is not supported (NHWC only)`);
}

const FUSED_ACTIVATIONS: Record<string, Activation> = {
  Relu: 'relu',
  Relu6: 'relu6',
  LeakyRelu: 'leakyrelu',
  Sigmoid: 'sigmoid',
  Tanh: 'tanh',
};

/** The fused ops of a _Fused* node: whether a bias is added, and the activation. */
function fusedOps(c: PrepareContext): { bias: boolean; activation: Activation; alpha: number } {
  const list = c.attrs.strs('fused_ops');
  let bias = false;
  let activation: Activation = 'none';
  for (const [k, f] of list.entries()) {
    if (k === 0 && f === 'BiasAdd') bias = true;
    else if (k === list.length - 1 && FUSED_ACTIVATIONS[f] && activation === 'none') activation = FUSED_ACTIVATIONS[f];
    else {
      throw new ArgumentError(`${c.where}: fused op '${f}' (fused_ops ${JSON.stringify(list)}) is not supported; supported: BiasAdd then one of ${Object.keys(FUSED_ACTIVATIONS).join(', ')}`);
    }
  }
  const extra = c.inputs.length - 2;
  if (extra !== (bias ? 1 : 0)) throw new ArgumentError(`${c.where}: expected ${bias ? 1 : 0} fused argument(s), got ${extra}`);
  return { bias, activation, alpha: c.attrs.float('leakyrelu_alpha', 0.2) };
}

function spatialPadding(c: PrepareContext, hw: [number, number], kernel: [number, number], stride: [number, number], dilation: [number, number]): [number, number, number, number] {
  const p = c.attrs.str('padding');
  if (p === 'SAME') return samePadding(hw, kernel, stride, dilation);
  if (p === 'VALID') return [0, 0, 0, 0];
  if (p === 'EXPLICIT') {
    const e = c.attrs.ints('explicit_paddings');
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) throw new ArgumentError(`${c.where}: explicit_paddings ${JSON.stringify(e)} must pad only H and W`);
    return [e[2]!, e[3]!, e[4]!, e[5]!];
  }
  throw new ArgumentError(`${c.where}: padding '${p}' is not supported (SAME, VALID, EXPLICIT)`);
}

function convOut(n: number, k: number, s: number, d: number, before: number, after: number): number {
  return Math.floor((n + before + after - d * (k - 1) - 1) / s) + 1;
}

function conv(depthwise: boolean, fused: boolean): OpImpl {
  return (c) => {
    checkNhwc(c);
    const x = runtimeInput(c, 0, 4);
    const f = constInput(c, 1, 'filter');
    if (f.shape.length !== 4) throw new ShapeError(`${c.where}: the filter must be [kh, kw, in, out], got ${formatShape(f.shape)}`);
    const [kh, kw, cin, m] = f.shape as [number, number, number, number];
    if (x[3] !== -1 && x[3] !== cin) throw new ShapeError(`${c.where}: the input has ${x[3]} channels, the filter ${formatShape(f.shape)} expects ${cin}`);
    const st = c.attrs.ints('strides', [1, 1, 1, 1]);
    const dl = c.attrs.ints('dilations', [1, 1, 1, 1]);
    if (st[0] !== 1 || st[3] !== 1 || dl[0] !== 1 || dl[3] !== 1) throw new ArgumentError(`${c.where}: strides/dilations over N or C are not supported`);
    const stride: [number, number] = [st[1]!, st[2]!];
    const dilation: [number, number] = [dl[1]!, dl[2]!];
    const { bias, activation, alpha } = fused ? fusedOps(c) : { bias: false, activation: 'none' as Activation, alpha: 0.2 };
    // Filters in our layout: [out, in/groups, kh, kw]. Depthwise output channel k·m + j reads input k.
    const cout = depthwise ? cin * m : m;
    const w = depthwise
      ? c.upload(permuteHost(f, [2, 3, 0, 1]), [cout, 1, kh, kw]) // [C, m, kh, kw] is [C·m, 1, kh, kw]
      : c.upload(permuteHost(f, [3, 2, 0, 1]));
    let b: Tensor | null = null;
    if (bias) {
      const bh = constInput(c, 2, 'bias');
      if (bh.data.length !== cout) throw new ShapeError(`${c.where}: the bias has ${bh.data.length} values for ${cout} output channels`);
      b = c.upload(bh, [cout]);
    }
    const groups = depthwise ? cin : 1;
    const pads = (h: number, wd: number) => spatialPadding(c, [h, wd], [kh, kw], stride, dilation);
    const [h, wd] = [x[1]!, x[2]!];
    const p = pads(h, wd);
    const shape = [x[0]!, convOut(h, kh, stride[0], dilation[0], p[0], p[1]), convOut(wd, kw, stride[1], dilation[1], p[2], p[3]), cout];
    if (shape[1]! <= 0 || shape[2]! <= 0) throw new ShapeError(`${c.where}: the ${kh}×${kw} filter does not fit the ${h}×${wd} input`);
    const params: Record<string, Tensor> = { weight: w };
    if (b) params.bias = b;
    const padAttr = c.attrs.str('padding');
    return {
      shape,
      type: 'conv2d',
      spec: { in: cin, out: cout, kernel: [kh, kw], stride, dilation, groups, padding: padAttr === 'SAME' ? 'same' : padAttr === 'VALID' ? 'valid' : p, bias, activation },
      params,
      run: ([t]) =>
        ops.conv2d(t!, w, b, { stride, dilation, groups, padding: pads(t!.shape[2]!, t!.shape[3]!), activation, alpha }),
    };
  };
}

function matmul(fused: boolean): OpImpl {
  return (c) => {
    const a = runtimeInput(c, 0, 2);
    if (c.attrs.bool('transpose_a', false)) throw new ArgumentError(`${c.where}: transpose_a is not supported`);
    const transB = c.attrs.bool('transpose_b', false);
    const { bias, activation, alpha } = fused ? fusedOps(c) : { bias: false, activation: 'none' as Activation, alpha: 0.2 };
    const bv = c.inputs[1];
    let biasT: Tensor | null = null;
    if (bv?.kind === 'const') {
      const bh = bv.host;
      if (bh.shape.length !== 2) throw new ShapeError(`${c.where}: the weight must be a matrix, got ${formatShape(bh.shape)}`);
      // linear takes [out, in]: TF's [in, out] transposed (or as given with transpose_b).
      const w = c.upload(transB ? bh : permuteHost(bh, [1, 0]));
      const [out, inF] = w.shape as [number, number];
      if (a[1] !== inF) throw new ShapeError(`${c.where}: input ${formatShape(a)} does not match the weight ${formatShape(bh.shape)}${transB ? ' (transposed)' : ''}`);
      if (bias) {
        const h = constInput(c, 2, 'bias');
        if (h.data.length !== out) throw new ShapeError(`${c.where}: the bias has ${h.data.length} values for ${out} outputs`);
        biasT = c.upload(h, [out]);
      }
      const params: Record<string, Tensor> = { weight: w };
      if (biasT) params.bias = biasT;
      return {
        shape: [a[0]!, out],
        type: 'linear',
        spec: { in: inF, out, bias, activation },
        params,
        run: ([x]) => ops.linear(x!, w, biasT, { activation, alpha }),
      };
    }
    const b = runtimeInput(c, 1, 2);
    if (bias) biasT = c.upload(constInput(c, 2, 'bias'));
    const out = transB ? b[0]! : b[1]!;
    return {
      shape: [a[0]!, out],
      type: 'matmul',
      run: async ([x, y]) => {
        let r = transB ? await using(await ops.transpose(y!, [1, 0]), (yt) => ops.matmul(x!, yt)) : await ops.matmul(x!, y!);
        if (biasT) r = await using(r, (t) => ops.add(t, biasT!));
        if (activation !== 'none') r = await using(r, (t) => ops.activation(t, activation, alpha));
        return r;
      },
    };
  };
}

function activation(act: Exclude<Activation, 'none'>): OpImpl {
  return (c) => {
    const shape = runtimeInput(c, 0);
    const alpha = c.attrs.float('alpha', 0.2);
    return { shape, type: act, run: ([x]) => ops.activation(x!, act, alpha) };
  };
}

function pool(kind: 'max' | 'avg'): OpImpl {
  return (c) => {
    checkNhwc(c);
    const x = runtimeInput(c, 0, 4);
    const k = c.attrs.ints('ksize');
    const s = c.attrs.ints('strides');
    if (k[0] !== 1 || k[3] !== 1 || s[0] !== 1 || s[3] !== 1) throw new ArgumentError(`${c.where}: pooling over N or C is not supported`);
    const kernel: [number, number] = [k[1]!, k[2]!];
    const stride: [number, number] = [s[1]!, s[2]!];
    const pads = (h: number, w: number) => spatialPadding(c, [h, w], kernel, stride, [1, 1]);
    const p = pads(x[1]!, x[2]!);
    const shape = [x[0]!, convOut(x[1]!, kernel[0], stride[0], 1, p[0], p[1]), convOut(x[2]!, kernel[1], stride[1], 1, p[2], p[3]), x[3]!];
    if (shape[1]! <= 0 || shape[2]! <= 0) throw new ShapeError(`${c.where}: the ${kernel.join('×')} window does not fit the ${x[1]}×${x[2]} input`);
    return {
      shape,
      type: kind === 'max' ? 'maxpool2d' : 'avgpool2d',
      spec: { kernel, stride },
      run: ([t]) => {
        const padding = pads(t!.shape[2]!, t!.shape[3]!);
        // TF never counts padding in an average, and padding never wins a max.
        return kind === 'max' ? ops.maxPool2d(t!, { kernel, stride, padding }) : ops.avgPool2d(t!, { kernel, stride, padding, countIncludePad: false });
      },
    };
  };
}

type BinaryFn = (a: Tensor, b: Tensor) => Promise<Tensor>;

function binary(fn: BinaryFn): OpImpl {
  return (c) => {
    if (c.inputs.length !== 2) throw new ArgumentError(`${c.where}: expected 2 inputs, got ${c.inputs.length}`);
    const shapes = c.inputs.map((v) => (v.kind === 'const' ? v.host.shape : v.shape));
    const shape = broadcastTf(shapes[0]!, shapes[1]!, c.where);
    const rank = shape.length;
    if (c.inputs.every((v) => v.kind === 'const')) throw new ArgumentError(`${c.where}: both inputs are constants (constant folding is not supported)`);
    const consts = c.inputs.map((v) => (v.kind === 'const' ? c.upload(hostInLayout(v.host, rank)) : null));
    // A lower-rank computed value against a rank-4 one is padded like TF, then moved to NCHW.
    const lifted = [0, 1].map((i) => !consts[i] && rank === 4 && shapes[i]!.length < 4);
    const lift = (t: Tensor) => using(t.reshape([...new Array<number>(4 - t.rank).fill(1), ...t.shape]), fromTfOrder);
    return {
      shape,
      run: async (args) => {
        const temps: Tensor[] = [];
        try {
          const operand = async (i: number) => {
            if (consts[i]) return consts[i]!;
            if (!lifted[i]) return args[i]!;
            const t = await lift(args[i]!);
            temps.push(t);
            return t;
          };
          return await fn(await operand(0), await operand(1));
        } finally {
          for (const t of temps) t.dispose();
        }
      },
    };
  };
}

function addN(c: PrepareContext): Prepared {
  const shape = runtimeInput(c, 0);
  c.inputs.forEach((_, i) => {
    const s = runtimeInput(c, i);
    if (s.join() !== shape.join()) throw new ShapeError(`${c.where}: inputs ${formatShape(shape)} and ${formatShape(s)} differ; AddN needs equal shapes`);
  });
  return {
    shape,
    type: 'add',
    run: async (args) => {
      if (args.length === 1) return args[0]!.reshape(args[0]!.shape);
      let acc = await ops.add(args[0]!, args[1]!);
      for (let i = 2; i < args.length; i++) acc = await using(acc, (t) => ops.add(t, args[i]!));
      return acc;
    },
  };
}

function biasAdd(c: PrepareContext): Prepared {
  checkNhwc(c);
  const x = runtimeInput(c, 0);
  const b = constInput(c, 1, 'bias');
  const ch = x[x.length - 1]!;
  if (b.data.length !== ch && ch !== -1) throw new ShapeError(`${c.where}: the bias has ${b.data.length} values for ${ch} channels`);
  const t = c.upload(hostInLayout(b, x.length));
  return { shape: x, type: 'add', run: ([v]) => ops.add(v!, t) };
}

function fusedBatchNorm(c: PrepareContext): Prepared {
  checkNhwc(c);
  if (c.attrs.bool('is_training', false)) throw new ArgumentError(`${c.where}: is_training = true is not supported`);
  const x = runtimeInput(c, 0);
  const [scale, offset, mean, variance] = [1, 2, 3, 4].map((i) => constInput(c, i, ['scale', 'offset', 'mean', 'variance'][i - 1]!));
  const eps = c.attrs.float('epsilon', 1e-3);
  const n = scale!.data.length;
  const s = new Float32Array(n);
  const t = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    if (!(variance!.data[k]! >= 0)) throw new FormatError(`${c.where}: variance[${k}] is ${variance!.data[k]}; a variance must be ≥ 0 (the scale 1/√(var + eps) would be NaN)`);
    s[k] = scale!.data[k]! / Math.sqrt(variance!.data[k]! + eps);
    t[k] = offset!.data[k]! - mean!.data[k]! * s[k]!;
  }
  const [st, tt] = [s, t].map((d) => c.upload(hostInLayout({ dtype: 'float32', shape: [n], data: d }, x.length)));
  return { shape: x, type: 'batchnorm', run: async ([v]) => using(await ops.mul(v!, st!), (m) => ops.add(m, tt!)) };
}

function axesOf(c: PrepareContext, i: number, rank: number): number[] {
  const a = [...constInput(c, i, 'axes').data].map((v) => (v < 0 ? v + rank : v));
  if (a.some((v) => !Number.isInteger(v) || v < 0 || v >= rank)) throw new ArgumentError(`${c.where}: axes ${JSON.stringify(a)} out of range for rank ${rank}`);
  return [...new Set(a)].sort((p, q) => p - q);
}

function reduction(fn: (x: Tensor, axes: number[], keep: boolean) => Promise<Tensor>, kind: string): OpImpl {
  return (c) => {
    const x = runtimeInput(c, 0);
    const rank = x.length;
    const axes = axesOf(c, 1, rank);
    const keep = c.attrs.bool('keep_dims', false);
    const shape = keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i));
    const ourAxes = axes.map((a) => ourAxis(a, rank)).sort((p, q) => p - q);
    // Without keep_dims our remaining axes must come out in TF's order.
    const remaining = [0, 1, 2, 3].slice(0, rank).filter((i) => !ourAxes.includes(i));
    const tfOfOurs = remaining.map((i) => (rank === 4 ? [0, 3, 1, 2][i]! : i));
    const sorted = [...tfOfOurs].sort((p, q) => p - q);
    const perm = !keep && rank === 4 && tfOfOurs.some((v, i) => v !== sorted[i]) ? sorted.map((v) => tfOfOurs.indexOf(v)) : null;
    const gap = kind === 'mean' && rank === 4 && axes.join() === '1,2' && !keep;
    return {
      shape,
      type: gap ? 'gap' : kind,
      run: async ([t]) => {
        const y = await fn(t!, ourAxes, keep);
        return perm ? using(y, (v) => ops.transpose(v, perm)) : y;
      },
    };
  };
}

function softmax(log: boolean): OpImpl {
  return (c) => {
    const x = runtimeInput(c, 0);
    const axis = ourAxis(x.length - 1, x.length);
    return { shape: x, type: log ? 'logsoftmax' : 'softmax', run: ([t]) => (log ? ops.logSoftmax(t!, axis) : ops.softmax(t!, axis)) };
  };
}

/** Runs `f` on x in TF's order (NHWC for rank 4) and brings a rank-4 result back to NCHW. */
async function inTfOrder(x: Tensor, tfRank: number, f: (t: Tensor) => Tensor | Promise<Tensor>): Promise<Tensor> {
  const t = tfRank === 4 ? await toTfOrder(x) : x;
  let y: Tensor;
  try {
    y = await f(t);
  } finally {
    if (t !== x) t.dispose();
  }
  return y.rank === 4 ? using(y, fromTfOrder) : y;
}

function resolveShape(target: number[], total: number, where: string): number[] {
  const free = target.indexOf(-1);
  const known = target.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = [...target];
  if (free >= 0) out[free] = known > 0 ? total / known : 0;
  if (target.filter((d) => d === -1).length > 1 || out.some((d) => !Number.isInteger(d) || d < 0) || out.reduce((a, b) => a * b, 1) !== total) {
    throw new ShapeError(`${where}: cannot reshape ${total} values to ${formatShape(target)}`);
  }
  return out;
}

function reshape(c: PrepareContext): Prepared {
  const x = runtimeInput(c, 0);
  const target = [...constInput(c, 1, 'shape').data];
  let shape: number[];
  const perSample = x.slice(1).reduce((a, b) => a * b, 1);
  if (x[0] === -1 && target[0] === -1) shape = [-1, ...resolveShape(target.slice(1), perSample, c.where)];
  else shape = resolveShape(target, perSample * (x[0] === -1 ? c.staticBatch : x[0]!), c.where);
  return {
    shape,
    type: shape.length === 2 && x.length > 2 ? 'flatten' : 'reshape',
    run: ([t]) => inTfOrder(t!, x.length, (v) => v.reshape(resolveShape(target, v.size, c.where))),
  };
}

function squeeze(c: PrepareContext): Prepared {
  const x = runtimeInput(c, 0);
  const dims = c.attrs.ints('squeeze_dims', []).map((d) => (d < 0 ? d + x.length : d));
  const drop = dims.length ? dims : x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  for (const d of drop) if (x[d] !== 1) throw new ShapeError(`${c.where}: cannot squeeze axis ${d} of ${formatShape(x)}`);
  const shape = x.filter((_, i) => !drop.includes(i));
  return {
    shape,
    type: shape.length === 2 && x.length > 2 ? 'flatten' : 'reshape',
    run: ([t]) => inTfOrder(t!, x.length, (v) => v.reshape(v.shape.filter((_, i) => !drop.includes(i)))),
  };
}

function expandDims(c: PrepareContext): Prepared {
  const x = runtimeInput(c, 0);
  let axis = constInput(c, 1, 'axis').data[0]!;
  if (axis < 0) axis += x.length + 1;
  const shape = [...x.slice(0, axis), 1, ...x.slice(axis)];
  return {
    shape,
    type: 'reshape',
    run: ([t]) => inTfOrder(t!, x.length, (v) => v.reshape([...v.shape.slice(0, axis), 1, ...v.shape.slice(axis)])),
  };
}

function identity(c: PrepareContext): Prepared {
  const x = runtimeInput(c, 0);
  return { shape: x, type: 'identity', run: async ([t]) => t!.reshape(t!.shape) };
}

function concat(c: PrepareContext): Prepared {
  const n = c.inputs.length - 1;
  if (n < 1) throw new ArgumentError(`${c.where}: no inputs to concatenate`);
  const shapes = c.inputs.slice(0, n).map((v) => (v.kind === 'const' ? v.host.shape : v.shape));
  const rank = shapes[0]!.length;
  let axis = constInput(c, n, 'axis').data[0]!;
  if (axis < 0) axis += rank;
  if (!(axis >= 0 && axis < rank) || shapes.some((s) => s.length !== rank)) throw new ShapeError(`${c.where}: cannot concatenate ${shapes.map((s) => formatShape(s)).join(', ')} along axis ${axis}`);
  const shape = [...shapes[0]!];
  shape[axis] = shapes.reduce((a, s) => (a === -1 || s[axis] === -1 ? -1 : a + s[axis]!), 0);
  const consts = c.inputs.slice(0, n).map((v) => (v.kind === 'const' ? c.upload(hostInLayout(v.host, rank)) : null));
  const our = ourAxis(axis, rank);
  return { shape, type: 'concat', run: (args) => ops.concat(args.slice(0, n).map((t, i) => consts[i] ?? t!), our) };
}

function padOp(c: PrepareContext): Prepared {
  const x = runtimeInput(c, 0);
  const p = constInput(c, 1, 'paddings');
  if (p.shape.join() !== `${x.length},2`) throw new ShapeError(`${c.where}: paddings ${formatShape(p.shape)} must be [${x.length}, 2]`);
  if (c.node.op === 'PadV2' && constInput(c, 2, 'constant value').data[0] !== 0) throw new ArgumentError(`${c.where}: only zero padding is supported`);
  const tfPads = Array.from({ length: x.length }, (_, i) => [p.data[2 * i]!, p.data[2 * i + 1]!] as [number, number]);
  if (tfPads.flat().some((v) => v < 0)) throw new ArgumentError(`${c.where}: negative paddings are not supported`);
  const shape = x.map((d, i) => (d === -1 ? -1 : d + tfPads[i]![0] + tfPads[i]![1]));
  const pads = x.map((_, i) => tfPads[x.length === 4 ? [0, 3, 1, 2][i]! : i]!);
  return {
    shape,
    type: 'pad',
    run: ([t]) => pad(t!, t!.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]), pads.map((q) => q[0])),
  };
}

function resize(mode: 'bilinear' | 'nearest'): OpImpl {
  return (c) => {
    const x = runtimeInput(c, 0, 4);
    const size = [...constInput(c, 1, 'size').data] as [number, number];
    const alignCorners = c.attrs.bool('align_corners', false);
    const halfPixelCenters = c.attrs.bool('half_pixel_centers', false);
    if (alignCorners && halfPixelCenters) throw new ArgumentError(`${c.where}: align_corners and half_pixel_centers cannot both be true`);
    return {
      shape: [x[0]!, size[0], size[1], x[3]!],
      type: 'resize',
      run: ([t]) => ops.resize(t!, size, { mode, alignCorners, halfPixelCenters: alignCorners || halfPixelCenters }),
    };
  };
}

const OPS: Record<string, OpImpl> = {
  Identity: identity,
  StopGradient: identity,
  Snapshot: identity,
  Conv2D: conv(false, false),
  _FusedConv2D: conv(false, true),
  DepthwiseConv2dNative: conv(true, false),
  FusedDepthwiseConv2dNative: conv(true, true),
  MatMul: matmul(false),
  _FusedMatMul: matmul(true),
  BiasAdd: biasAdd,
  FusedBatchNorm: fusedBatchNorm,
  FusedBatchNormV3: fusedBatchNorm,
  Relu: activation('relu'),
  Relu6: activation('relu6'),
  LeakyRelu: activation('leakyrelu'),
  Sigmoid: activation('sigmoid'),
  Tanh: activation('tanh'),
  MaxPool: pool('max'),
  AvgPool: pool('avg'),
  Add: binary(ops.add),
  AddV2: binary(ops.add),
  AddN: addN,
  Sub: binary(ops.sub),
  Mul: binary(ops.mul),
  RealDiv: binary(ops.div),
  Div: binary(ops.div),
  Mean: reduction(ops.mean, 'mean'),
  Sum: reduction(ops.sum, 'sum'),
  Max: reduction(ops.max, 'max'),
  Softmax: softmax(false),
  LogSoftmax: softmax(true),
  Reshape: reshape,
  Squeeze: squeeze,
  ExpandDims: expandDims,
  ConcatV2: concat,
  Pad: padOp,
  PadV2: padOp,
  ResizeBilinear: resize('bilinear'),
  ResizeNearestNeighbor: resize('nearest'),
};

/** The TF ops that imported graphs may use (besides Placeholder and Const). */
export const SUPPORTED_TFJS_OPS: readonly string[] = Object.freeze(['Placeholder', 'Const', ...Object.keys(OPS)].sort());

// -----------------------------------------------------------------------------------------------
// The graph

function parseInput(s: string): { node: string; index: number } | null {
  if (s.startsWith('^')) return null;
  const m = /^(.*):(\d+)$/.exec(s);
  return m ? { node: m[1]!, index: Number(m[2]) } : { node: s, index: 0 };
}

const stripIndex = (s: string) => s.replace(/:0$/, '');

/** The topology of a model.json, checked before any weight is read. */
class GraphDef {
  readonly nodes = new Map<string, TfjsNode>();
  readonly outputs: string[];
  readonly order: TfjsNode[];
  readonly input: TfjsNode;

  constructor(
    readonly json: TfjsModelJson,
    readonly options: TfjsGraphOptions & { name: string },
  ) {
    const name = options.name;
    const list = (json.modelTopology as { node: TfjsNode[] }).node;
    for (const n of list) {
      if (!n || typeof n.name !== 'string' || typeof n.op !== 'string') throw new ArgumentError(`${name}: a graph node lacks a name or an op`);
      if (this.nodes.has(n.name)) throw new ArgumentError(`${name}: two graph nodes are named '${n.name}'`);
      this.nodes.set(n.name, n);
    }
    const consumed = new Set<string>();
    for (const n of list) for (const i of n.input ?? []) consumed.add(parseInput(i)?.node ?? '');
    let outputs = options.outputs?.map(stripIndex);
    if (!outputs?.length) {
      const sig = Object.values(json.signature?.outputs ?? {}).map((o) => stripIndex(o.name));
      outputs = sig.length ? sig : list.filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'Placeholder').map((n) => n.name);
    }
    if (!outputs.length) throw new ArgumentError(`${name}: the graph has no outputs`);
    for (const o of outputs) {
      if (o.includes(':')) throw new ArgumentError(`${name}: output '${o}' is not output 0 of its node; only single-output nodes can be model outputs`);
      if (!this.nodes.has(o)) throw new ArgumentError(`${name}: there is no node named '${o}' to output`);
    }
    this.outputs = outputs;
    this.order = this.topologicalOrder(outputs);
    // Unsupported ops, with what could still be computed.
    const bad = this.order.filter((n) => n.op !== 'Const' && n.op !== 'Placeholder' && !OPS[n.op]);
    if (bad.length) {
      const ok = outputs.filter((o) => !this.topologicalOrder([o]).some((n) => bad.includes(n)));
      const first = bad[0]!;
      const others = [...new Map(bad.filter((n) => n.op !== first.op).map((n) => [n.op, n.name])).entries()];
      const more = others.length ? ` (also: ${others.map(([op, n]) => `${op} in '${n}'`).join(', ')})` : '';
      throw new ArgumentError(
        `${name}: op '${first.op}' of node '${first.name}' is not supported${more}. ` +
          (ok.length ? `These outputs need only supported ops: ${ok.join(', ')}; load with { outputs: [${ok.map((o) => `'${o}'`).join(', ')}] } to compute them. ` : '') +
          `Supported ops: ${SUPPORTED_TFJS_OPS.join(', ')}`,
      );
    }
    const inputs = this.order.filter((n) => n.op === 'Placeholder');
    if (inputs.length !== 1) {
      throw new ArgumentError(`${name}: the outputs depend on ${inputs.length} placeholders (${inputs.map((n) => n.name).join(', ') || 'none'}); graphs with exactly one input are supported`);
    }
    this.input = inputs[0]!;
    for (const n of this.order) {
      for (const i of n.input ?? []) {
        const p = parseInput(i);
        if (p && p.index !== 0) throw new ArgumentError(`${name}: node '${n.name}' reads output ${p.index} of '${p.node}'; only single-output ops are supported`);
      }
    }
  }

  /** The nodes the given nodes depend on (data inputs only), dependencies first. */
  topologicalOrder(targets: readonly string[]): TfjsNode[] {
    const out: TfjsNode[] = [];
    const state = new Map<string, 1 | 2>();
    for (const t of targets) {
      const stack: [string, boolean][] = [[t, false]];
      while (stack.length) {
        const [name, done] = stack.pop()!;
        if (done) {
          if (state.get(name) !== 2) {
            state.set(name, 2);
            out.push(this.nodes.get(name)!);
          }
          continue;
        }
        const s = state.get(name);
        if (s === 2) continue;
        if (s === 1) throw new ArgumentError(`${this.options.name}: the graph has a cycle through node '${name}'`);
        const node = this.nodes.get(name);
        if (!node) throw new ArgumentError(`${this.options.name}: an input refers to a missing node '${name}'`);
        state.set(name, 1);
        stack.push([name, true]);
        const deps = (node.input ?? []).map(parseInput).filter((p): p is { node: string; index: number } => !!p);
        for (let i = deps.length - 1; i >= 0; i--) if (state.get(deps[i]!.node) !== 2) stack.push([deps[i]!.node, false]);
      }
    }
    return out;
  }

  /** Uploads the weights and prepares every node. */
  build(gpu: Gpu, weights: Map<string, HostTensor>): TfjsGraphModel {
    const name = this.options.name;
    const uploaded: Tensor[] = [];
    try {
      const upload = (h: HostTensor, shape?: number[]) => {
        const t = gpu.keep(tensor(gpu, h.data instanceof Float32Array ? h.data : Float32Array.from(h.data), shape ?? (h.shape.length ? h.shape : [1])));
        uploaded.push(t);
        return t;
      };
      // The input.
      const attrs = new Attrs(this.input, name);
      let tfShape = attrs.shape('shape');
      if (!tfShape) {
        const sig = Object.values(this.json.signature?.inputs ?? {}).find((s) => stripIndex(s.name) === this.input.name);
        tfShape = sig?.tensorShape && !sig.tensorShape.unknownRank ? (sig.tensorShape.dim ?? []).map((d) => Number(d.size ?? -1)) : null;
      }
      const given = this.options.inputShape;
      if (!tfShape) {
        if (!given) throw new ArgumentError(`${name}: the input placeholder '${this.input.name}' has no shape; pass { inputShape: [C, H, W] }`);
        tfShape = [-1, ...(given.length === 3 ? [given[1]!, given[2]!, given[0]!] : given)];
      }
      const staticBatch = tfShape[0]! > 0 ? tfShape[0]! : 1;
      let sample = ours(tfShape).slice(1);
      if (given) {
        if (given.length !== sample.length || given.some((d, i) => sample[i] !== -1 && sample[i] !== d)) {
          throw new ArgumentError(`${name}: inputShape ${formatShape(given)} does not match the placeholder's ${formatShape(sample)} (our layout, per sample)`);
        }
        sample = [...given];
      }
      if (sample.some((d) => !(d > 0))) {
        throw new ArgumentError(`${name}: the input placeholder's shape ${formatShape(sample)} (per sample, our layout) is not fully known; pass { inputShape }`);
      }
      checkTensorElements(sample.reduce((a, b) => a * b, 1), `${name}: the input ${formatShape(sample)}`);
      const values = new Map<string, Value>();
      values.set(this.input.name, { kind: 'runtime', shape: [-1, ...(tfShape.length === 4 ? [sample[1]!, sample[2]!, sample[0]!] : sample)] });
      const steps: Step[] = [];
      for (const node of this.order) {
        if (node === this.input) continue;
        const where = `${name}: node '${node.name}' (${node.op})`;
        if (node.op === 'Const') {
          const h = weights.get(node.name);
          if (!h) throw new ArgumentError(`${where}: no weights for this constant in the weights manifest`);
          values.set(node.name, { kind: 'const', host: h });
          continue;
        }
        const inputNames = (node.input ?? []).map(parseInput).filter((p): p is { node: string; index: number } => !!p).map((p) => p.node);
        const inputs = inputNames.map((n) => values.get(n)!);
        if (OPS[node.op] === identity && inputs[0]?.kind === 'const') {
          values.set(node.name, inputs[0]);
          continue;
        }
        const prepared = OPS[node.op]!({ node, attrs: new Attrs(node, where), where, inputs, upload, staticBatch });
        checkTensorElements(prepared.shape.reduce((a, d) => a * Math.max(d, 1), 1), `${where}: output ${formatShape(prepared.shape)}`);
        values.set(node.name, { kind: 'runtime', shape: prepared.shape });
        const firstRuntime = inputs.find((v): v is { kind: 'runtime'; shape: number[] } => v.kind === 'runtime');
        steps.push({
          name: node.name,
          op: node.op,
          inputs: inputNames.map((n, i) => (inputs[i]!.kind === 'runtime' ? n : null)),
          run: prepared.run,
          tfShape: prepared.shape,
          layer: {
            name: node.name,
            op: node.op,
            type: (prepared.type ?? node.op.toLowerCase()) as LayerType,
            spec: { name: node.name, type: prepared.type ?? node.op.toLowerCase(), ...prepared.spec } as unknown as LayerSpec,
            inputs: inputNames,
            inputShape: firstRuntime ? ours(firstRuntime.shape).slice(1) : [],
            outputShape: ours(prepared.shape).slice(1),
            params: new Map(Object.entries(prepared.params ?? {})),
          },
        });
      }
      for (const o of this.outputs) {
        if (values.get(o)?.kind !== 'runtime') throw new ArgumentError(`${name}: output '${o}' is a constant, not computed from the input`);
      }
      return new TfjsGraphModel(gpu, name, this.input.name, sample, this.outputs, steps, uploaded, this.options.classNames, this.json);
    } catch (e) {
      for (const t of uploaded) t.dispose();
      throw e;
    }
  }
}

/** One layer of an imported graph: a node, with its TF op and input node names. */
export interface TfjsLayer extends Layer {
  /** The TF op, e.g. '_FusedConv2D'. `type` is the nearest of our layer types, else op.toLowerCase(). */
  readonly op: string;
  /** Names of the nodes it reads (constants included). */
  readonly inputs: readonly string[];
}

interface Step {
  name: string;
  op: string;
  /** Runtime inputs by node name; null where the input is a constant. */
  inputs: (string | null)[];
  run(args: (Tensor | undefined)[]): Promise<Tensor>;
  tfShape: number[];
  layer: TfjsLayer;
}

export interface TfjsForwardOptions extends ForwardOptions {
  /** Which nodes to compute; default the model's outputs. */
  outputs?: string[];
}

/**
 * An imported TF.js graph model. Implements `ExplainableModel`: every computed node is a layer named
 * after the graph node, registered with nameOutput so hooks (Grad-CAM layers, neuron targets) can
 * use it. Rank-4 values are NCHW; others keep TF's layout.
 */
export class TfjsGraphModel implements ExplainableModel {
  readonly layers: readonly TfjsLayer[];
  /** Per-sample input shape in our layout, e.g. [3, 128, 128]. */
  readonly inputShape: readonly number[];
  /** Per-sample shape of the main output (the first of `outputNames`). */
  readonly outputShape: readonly number[];
  private readonly steps: Step[];
  private readonly byName: Map<string, Step>;
  private readonly plans = new Map<string, Step[]>();
  private disposed = false;

  /** Use `loadTfjsGraphModel`. */
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    /** The graph's input placeholder. */
    readonly inputName: string,
    inputShape: number[],
    /** The graph nodes the model computes; `forward` returns the first. */
    readonly outputNames: readonly string[],
    steps: Step[],
    private readonly constants: Tensor[],
    readonly classNames: readonly string[] | undefined,
    /** The model.json it came from. */
    readonly modelJson: TfjsModelJson,
  ) {
    this.steps = steps;
    this.byName = new Map(steps.map((s) => [s.name, s]));
    this.layers = steps.map((s) => s.layer);
    this.inputShape = inputShape;
    this.outputShape = this.step(outputNames[0]!)?.layer.outputShape ?? inputShape;
    const k = this.outputShape.reduce((a, b) => a * b, 1);
    if (classNames && classNames.length !== k) {
      throw new ArgumentError(`${name}: ${classNames.length} class names for an output of shape ${formatShape(this.outputShape)} (${k} values)`);
    }
  }

  get layerNames(): string[] {
    return this.layers.map((l) => l.name);
  }

  /** The TF ops the computed part of the graph uses. */
  get usedOps(): string[] {
    return [...new Set(this.steps.map((s) => s.op))].sort();
  }

  layer(name: string): TfjsLayer {
    const l = this.step(name)?.layer;
    if (!l) {
      const names = this.layerNames;
      const shown = names.length > 40 ? [...names.slice(0, 40), `… (${names.length - 40} more)`] : names;
      throw new ArgumentError(`model '${this.name}' has no layer '${name}'; layers: ${shown.join(', ')}`);
    }
    return l;
  }

  private step(name: string): Step | undefined {
    return this.byName.get(name);
  }

  /**
   * The node `forward({ logits: true })` stops at: the input of the main output's final Softmax or
   * Sigmoid (looking through Identity nodes), else the main output itself.
   */
  get logitsName(): string {
    let s = this.step(this.outputNames[0]!);
    while (s && s.op === 'Identity' && s.inputs[0]) s = this.step(s.inputs[0]);
    if (s && (s.op === 'Softmax' || s.op === 'Sigmoid') && s.inputs[0] && this.step(s.inputs[0])) return s.inputs[0];
    return this.outputNames[0]!;
  }

  /** All weights (conv and matmul weights and biases, in our layout). */
  parameters(): Tensor[] {
    return this.layers.flatMap((l) => [...l.params.values()]);
  }

  /** Runs x [N, ...inputShape] and returns the main output ([N, K] for a classifier). */
  async forward(x: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    const target = options.logits ? this.logitsName : this.outputNames[0]!;
    const [y] = await this.execute(x, [target]);
    return y!;
  }

  /**
   * Runs x and returns every output by node name (`options.outputs` to pick other nodes). Rank-4
   * outputs are NCHW. The caller disposes them.
   */
  async forwardAll(x: Tensor, options: TfjsForwardOptions = {}): Promise<Record<string, Tensor>> {
    const names = (options.outputs ?? this.outputNames).map(stripIndex);
    const ys = await this.execute(x, names);
    return Object.fromEntries(names.map((n, i) => [n, ys[i]!]));
  }

  private plan(targets: string[]): Step[] {
    const key = targets.join('\u0000');
    let p = this.plans.get(key);
    if (!p) {
      const need = new Set<string>();
      const stack = [...targets];
      while (stack.length) {
        const n = stack.pop()!;
        if (need.has(n)) continue;
        need.add(n);
        const s = this.step(n);
        if (s) for (const i of s.inputs) if (i) stack.push(i);
      }
      p = this.steps.filter((s) => need.has(s.name));
      this.plans.set(key, p);
    }
    return p;
  }

  private async execute(x: Tensor, targets: string[]): Promise<Tensor[]> {
    if (this.disposed) throw new ArgumentError(`model '${this.name}' was disposed`);
    const expected = this.inputShape;
    if (x.rank !== expected.length + 1 || expected.some((d, i) => x.shape[i + 1] !== d)) {
      throw new ShapeError(`model '${this.name}' expects input [N, ${expected.join(', ')}], got ${formatShape(x.shape)}`);
    }
    for (const t of targets) if (t !== this.inputName && !this.step(t)) this.layer(t); // unknown names: a clear error
    const plan = this.plan(targets);
    // How many later steps (and targets) still read each value.
    const uses = new Map<string, number>();
    for (const s of plan) for (const i of s.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const t of targets) uses.set(t, (uses.get(t) ?? 0) + 1);
    const live = new Map<string, Tensor>([[this.inputName, x]]);
    const release = (n: string) => {
      const left = (uses.get(n) ?? 0) - 1;
      uses.set(n, left);
      if (left <= 0 && n !== this.inputName) {
        live.get(n)?.dispose(); // the tape keeps what its backward needs
        live.delete(n);
      }
    };
    try {
      for (const s of plan) {
        const args = s.inputs.map((i) => (i ? live.get(i) : undefined));
        const out = await s.run(args);
        nameOutput(this.gpu, s.name, out);
        live.set(s.name, out);
        for (const i of s.inputs) if (i) release(i);
      }
      // Each target gets its own handle (a view when a name repeats or is the input itself).
      const seen = new Set<string>();
      const outs = targets.map((t) => {
        const v = live.get(t)!;
        if (t === this.inputName || seen.has(t)) return v.reshape(v.shape);
        seen.add(t);
        return v;
      });
      return outs;
    } catch (e) {
      for (const [n, t] of live) if (n !== this.inputName) t.dispose();
      throw e;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.constants) t.dispose();
  }
}

/** Class names of the @vladmandic/human graph models, which their model.json files do not carry. */
export const GRAPH_MODEL_CLASSES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'emotion.json': ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'],
  'antispoof.json': ['real face'],
});
