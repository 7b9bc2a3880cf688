/**
 * ONNX models (`torch.onnx.export`, tf2onnx, …) on the shared graph executor (graph/executor.ts):
 * this module decodes the protobuf (protobufjs, schema.ts), checks the opset (9 to 21), orders the
 * nodes, reads the initialisers (float32, float16, float64 converted; integers for shapes; external
 * data files only inside the model's folder), and turns each node into a step through the ONNX op
 * table (ops/index.ts), folding the shape arithmetic PyTorch emits once, at load time.
 *
 * The batch may be dynamic (a dim_param): one model explains batches of any size. Other dynamic
 * dimensions need `{ inputShape }`. Hook points are the node output names; a node's own name (the
 * exporter's layer name, e.g. '/layer4/layer4.1/relu_1/Relu') finds its output too.
 *
 * Everything in the file is checked before anything of the size it declares is allocated, and a
 * failed load frees what it uploaded.
 */
import { ArgumentError, FormatError, formatShape } from '../../runtime/errors.js';
import type { Gpu } from '../../runtime/gpu.js';
import { dependencyOrder, GraphBuilder, GraphModel, graphLimits, isFolded, unsupportedOpsError, type InputNormalization, type Value } from '../graph/executor.js';
import { checkedElements, type GraphLimits, type HostTensor } from '../graph/host.js';
import type { Limits } from '../../runtime/limits.js';
import { openModelSource, type ModelSource, type SiblingReader } from '../graph/source.js';
import { OnnxAttrs } from './attributes.js';
import { ONNX_OPS, SUPPORTED_ONNX_OPS } from './ops/index.js';
import { DATA_TYPE_NAMES, decodeModelProto, toNumber, type OnnxModelProto, type OnnxNodeProto, type OnnxTensorProto, type OnnxValueInfoProto } from './schema.js';
import { decodeTensor, isFloatType, type ExternalReader } from './tensors.js';

/** The opsets of the default domain the importer reads. */
export const ONNX_OPSETS = Object.freeze({ min: 9, max: 21 });

export interface OnnxModelOptions {
  /** A name for messages. Default: the file name without '.onnx', else the graph's name, else 'onnx'. */
  name?: string;
  /** Per-sample input shape ([C, H, W]) when the model leaves dimensions other than the batch open. */
  inputShape?: number[];
  /** The values to compute (node output names). Default: the graph's outputs; `forward` returns the first. */
  outputs?: string[];
  /** Names of the main output's classes. */
  classNames?: string[];
  /** Put (x − mean)/std per channel in front of the model, so that it takes pixels in [0, 1]. */
  normalize?: InputNormalization;
  /**
   * Values for graph inputs other than the image input (they become constants), or replacements of
   * initialisers, by name.
   */
  constants?: ReadonlyMap<string, HostTensor>;
  /** For a model given as bytes: reads a file it names (external data) from the model's folder. */
  readFile?: SiblingReader;
  /** Limits on declared sizes for this load (runtime/limits.ts: maxTensorElements, maxModelBytes; default the library's). */
  limits?: Partial<Limits>;
}

/** A loaded ONNX model: the shared GraphModel, plus what the file says about itself. */
export class OnnxModel extends GraphModel {
  /** The default domain's opset version. */
  opset = 0;
  irVersion = 0;
  /** producer_name and producer_version, e.g. 'pytorch 1.13.1'. */
  producer = '';
  /** metadata_props. */
  metadata: ReadonlyMap<string, string> = new Map();

  protected override describeCopy(copy: this): void {
    copy.opset = this.opset;
    copy.irVersion = this.irVersion;
    copy.producer = this.producer;
    copy.metadata = this.metadata;
  }
}

const DEFAULT_DOMAINS = new Set(['', 'ai.onnx']);

/**
 * Loads an ONNX model: a path (Node), a URL (fetched; external data is fetched from the same origin
 * and folder), or the bytes. The returned model runs on our kernels and autodiff: every saliency
 * method works on it.
 */
export async function loadOnnxModel(gpu: Gpu, source: string | URL | ArrayBuffer | Uint8Array, options: OnnxModelOptions = {}): Promise<OnnxModel> {
  const limits = graphLimits(gpu, options.limits);
  const src = await openModelSource(source, { what: 'loadOnnxModel', maxBytes: limits.maxBytes, extension: /\.onnx$/i, readSibling: options.readFile });
  if (src.bytes.byteLength === 0) throw new FormatError(`${src.where} is empty, not an ONNX model`);
  const proto = decodeModelProto(src.bytes, src.where);
  const parsed = new OnnxGraph(proto, src, options, limits);
  const initialisers = await parsed.readInitialisers();
  return parsed.build(gpu, initialisers);
}

/** The parts of a decoded model the importer needs, checked before any initialiser is decoded. */
class OnnxGraph {
  readonly name: string;
  readonly opset: number;
  readonly nodes: OnnxNodeProto[];
  /** Value name → the node that computes it (as its output k). */
  readonly producers = new Map<string, { node: OnnxNodeProto; index: number }>();
  readonly initialisers = new Map<string, OnnxTensorProto>();
  readonly input: OnnxValueInfoProto;
  readonly outputs: string[];
  readonly order: OnnxNodeProto[];

  constructor(
    readonly proto: OnnxModelProto,
    readonly src: ModelSource,
    readonly options: OnnxModelOptions,
    readonly limits: GraphLimits,
  ) {
    const where = src.where;
    const graph = proto.graph;
    if (!graph) throw new FormatError(`${where} is not an ONNX model (no graph)`);
    this.name = options.name ?? src.name ?? (graph.name || 'onnx');
    const name = this.name;
    // Opset of the default domain.
    const opsets = (proto.opsetImport ?? []).filter((o) => DEFAULT_DOMAINS.has(o.domain ?? ''));
    if (!opsets.length) throw new FormatError(`${name}: the model imports no opset of the default ONNX domain`);
    this.opset = toNumber(opsets[0]!.version);
    if (!(this.opset >= ONNX_OPSETS.min && this.opset <= ONNX_OPSETS.max)) {
      throw new FormatError(`${name}: opset ${this.opset} is outside the supported range ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max}; convert the model (onnx.version_converter) or re-export it`);
    }
    if (graph.sparseInitializer?.length) throw new FormatError(`${name}: sparse initialisers are not supported`);
    for (const t of graph.initializer ?? []) {
      if (!t.name) throw new FormatError(`${name}: an initialiser has no name`);
      this.initialisers.set(t.name, t);
    }
    this.nodes = graph.node ?? [];
    for (const node of this.nodes) {
      for (const [k, o] of (node.output ?? []).entries()) {
        if (!o) continue;
        if (this.producers.has(o) || this.initialisers.has(o)) throw new FormatError(`${name}: two nodes compute the value '${o}'`);
        this.producers.set(o, { node, index: k });
      }
    }
    // The one real input (before IR 4, initialisers are listed as inputs too).
    const given = options.constants ?? new Map<string, HostTensor>();
    const inputs = (graph.input ?? []).filter((i) => i.name && !this.initialisers.has(i.name) && !given.has(i.name));
    if (inputs.length !== 1) {
      throw new FormatError(`${name}: the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ') || 'none'}); models with exactly one input are supported`);
    }
    this.input = inputs[0]!;
    this.outputs = options.outputs?.length ? [...options.outputs] : (graph.output ?? []).map((o) => o.name ?? '');
    if (!this.outputs.length || this.outputs.some((o) => !o)) throw new FormatError(`${name}: the graph has no named outputs`);
    for (const o of this.outputs) {
      if (!this.producers.has(o)) {
        const node = this.nodes.find((n) => n.name === o);
        const hint = node ? `; '${o}' is a node, its output is '${node.output?.[0]}'` : '';
        if (options.outputs?.includes(o)) throw new ArgumentError(`${name}: no node computes '${o}'${hint}`);
        throw new FormatError(`${name}: the output '${o}' is not computed by any node`);
      }
    }
    this.order = this.topologicalOrder(this.outputs);
    this.checkOps();
  }

  /** The nodes the given values depend on, dependencies first. */
  topologicalOrder(targets: readonly string[]): OnnxNodeProto[] {
    const inputName = this.input.name!;
    const roots = targets.map((t) => this.producers.get(t)?.node).filter((n): n is OnnxNodeProto => !!n);
    const deps = (node: OnnxNodeProto) =>
      (node.input ?? [])
        .filter((v) => v && v !== inputName && !this.initialisers.has(v) && !this.options.constants?.has(v))
        .map((v) => {
          const p = this.producers.get(v);
          if (!p) throw new FormatError(`${this.name}: node '${nodeLabel(node)}' (${node.opType}) reads '${v}', which is neither the input, an initialiser nor any node's output`);
          return p.node;
        });
    return dependencyOrder(roots, deps, nodeLabel, this.name);
  }

  private checkOps(): void {
    const supported = (n: OnnxNodeProto) => DEFAULT_DOMAINS.has(n.domain ?? '') && ONNX_OPS.has(n.opType ?? '');
    const bad = this.order.filter((n) => !supported(n));
    if (bad.length) {
      const label = (n: OnnxNodeProto) => ({ op: DEFAULT_DOMAINS.has(n.domain ?? '') ? (n.opType ?? '') : `${n.domain}.${n.opType}`, name: nodeLabel(n) });
      const ok = this.outputs.filter((o) => !this.topologicalOrder([o]).some((n) => bad.includes(n)));
      throw unsupportedOpsError(this.name, bad.map(label), ok, SUPPORTED_ONNX_OPS);
    }
    // Only the first output of a node may be read (the others: MaxPool's indices, BatchNormalization's statistics …).
    const needed = new Set<string>(this.outputs);
    for (const n of this.order) for (const i of n.input ?? []) if (i) needed.add(i);
    for (const n of this.order) {
      (n.output ?? []).forEach((o, k) => {
        if (k > 0 && o && needed.has(o)) throw new FormatError(`${this.name}: '${o}' is output ${k} of node '${nodeLabel(n)}' (${n.opType}); only the first output of a node is supported`);
      });
    }
  }

  /** Decodes the initialisers the ordered nodes read (external files read once each, inside the model's folder). */
  async readInitialisers(): Promise<Map<string, HostTensor>> {
    const used = new Set<string>();
    const given = this.options.constants;
    for (const n of this.order) for (const i of n.input ?? []) if (this.initialisers.has(i) && !given?.has(i)) used.add(i);
    const files = new Map<string, Promise<Uint8Array>>();
    let total = 0;
    const sibling = this.src.sibling;
    const readExternal: ExternalReader | undefined = sibling
      ? async (location, offset, length, what) => {
          let p = files.get(location);
          if (!p) {
            p = sibling(location, 'external data file', this.limits.maxBytes);
            files.set(location, p);
          }
          const bytes = await p;
          if (offset + length > bytes.byteLength) {
            throw new FormatError(`${what}: external data '${location.slice(0, 200)}' holds ${bytes.byteLength} bytes, less than offset ${offset} + length ${length}: the file is truncated`);
          }
          return bytes.subarray(offset, offset + length);
        }
      : undefined;
    const out = new Map<string, HostTensor>();
    for (const name of used) {
      const t = this.initialisers.get(name)!;
      const h = await decodeTensor(t, this.limits, `${this.name}: initialiser '${name}'`, readExternal);
      total += h.data.length * 4;
      if (total > this.limits.maxBytes) throw new FormatError(`${this.name}: the initialisers hold more than the limit of ${this.limits.maxBytes} bytes`);
      out.set(name, h);
    }
    return out;
  }

  /** The input's per-sample shape in NCHW, the batch as declared (−1 when dynamic). */
  private inputShape(): { batch: number; sample: number[] } {
    const name = this.name;
    const t = this.input.type?.tensorType;
    if (!t) throw new FormatError(`${name}: the input '${this.input.name}' is not a tensor`);
    if (!isFloatType(t.elemType ?? 0)) throw new FormatError(`${name}: the input '${this.input.name}' is ${DATA_TYPE_NAMES.get(t.elemType ?? 0) ?? t.elemType}; float inputs are supported`);
    const dims = t.shape?.dim?.map((d) => (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0 ? toNumber(d.dimValue) : -1));
    const given = this.options.inputShape;
    if (!dims) {
      if (!given) throw new ArgumentError(`${name}: the input '${this.input.name}' has no declared shape; pass { inputShape: [C, H, W] }`);
      return { batch: -1, sample: [...given] };
    }
    if (dims.length < 1) throw new FormatError(`${name}: the input '${this.input.name}' is a scalar; a batch axis is expected`);
    let sample = dims.slice(1);
    if (given) {
      if (given.length !== sample.length || given.some((d, i) => sample[i] !== -1 && sample[i] !== d)) {
        throw new ArgumentError(`${name}: inputShape ${JSON.stringify(given)} does not match the input's declared [${sample.map((d) => (d < 0 ? '?' : d)).join(', ')}] (per sample)`);
      }
      sample = [...given];
    }
    if (sample.some((d) => !(Number.isSafeInteger(d) && d > 0))) {
      throw new ArgumentError(`${name}: the input '${this.input.name}' has open dimensions [${sample.map((d) => (d < 0 ? '?' : d)).join(', ')}] besides the batch; pass { inputShape } (per sample, e.g. [3, 224, 224])`);
    }
    return { batch: dims[0]!, sample };
  }

  /**
   * The Add that a MatMul node can take in as its bias: the MatMul multiplies a computed matrix by a
   * constant one, its output is read by that Add alone (and is no model output), and the Add's other
   * operand is a constant row [n] or [1, n].
   */
  private fusableAdd(node: OnnxNodeProto, readers: Map<string, OnnxNodeProto[]>, values: Map<string, Value>): { node: OnnxNodeProto; bias: string } | null {
    if (node.opType !== 'MatMul' || !DEFAULT_DOMAINS.has(node.domain ?? '')) return null;
    const [a, w] = (node.input ?? []).map((i) => values.get(i));
    const out = node.output?.[0];
    if (a?.kind !== 'runtime' || a.shape.length !== 2 || w?.kind !== 'const' || w.host.shape.length !== 2 || !out || this.outputs.includes(out)) return null;
    const next = readers.get(out);
    if (next?.length !== 1 || next[0]!.opType !== 'Add' || !DEFAULT_DOMAINS.has(next[0]!.domain ?? '') || (next[0]!.output ?? []).length !== 1) return null;
    const bias = (next[0]!.input ?? []).find((i) => i !== out);
    const v = bias ? values.get(bias) : undefined;
    const n = w.host.shape[1]!;
    if (!bias || v?.kind !== 'const' || !(v.host.shape.join() === `${n}` || v.host.shape.join() === `1,${n}`)) return null;
    return { node: next[0]!, bias };
  }

  build(gpu: Gpu, initialisers: Map<string, HostTensor>): OnnxModel {
    const name = this.name;
    const b = new GraphBuilder(gpu, name, this.limits);
    try {
      const { batch, sample } = this.inputShape();
      checkedElements(sample, this.limits, `${name}: the input '${this.input.name}'`);
      const inputName = this.input.name!;
      const shape = [batch, ...sample];
      let modelInput = inputName;
      if (this.options.normalize) {
        modelInput = `${inputName}:pixels`;
        b.normalizeInput(modelInput, inputName, shape, this.options.normalize);
      } else b.runtime(inputName, shape);
      for (const [k, h] of initialisers) b.constant(k, h);
      for (const [k, h] of this.options.constants ?? []) b.constant(k, h);
      const aliases = new Map<string, string>();
      // How many nodes read each value (and whether it is an output), for the MatMul + Add fusion.
      const readers = new Map<string, OnnxNodeProto[]>();
      for (const n of this.order) for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
      const fusedAdds = new Set<OnnxNodeProto>();
      // Nodes without inputs (Constant) first: their values are known when a fusion looks ahead.
      const sourceless = (n: OnnxNodeProto) => !(n.input ?? []).some((i) => i);
      const order = [...this.order.filter(sourceless), ...this.order.filter((n) => !sourceless(n))];
      for (let node of order) {
        if (fusedAdds.has(node)) continue;
        let op = node.opType!;
        // MatMul by a constant matrix, then Add of a constant row: one linear layer with a bias, as
        // PyTorch's Gemm (TF and Paddle exports write fully connected layers this way). Named after the
        // Add's output; the MatMul's node name finds it too.
        const add = this.fusableAdd(node, readers, b.values);
        if (add) {
          fusedAdds.add(add.node);
          if (node.name) aliases.set(node.name, add.node.output![0]!);
          node = { name: add.node.name, opType: 'Gemm', input: [node.input![0]!, node.input![1]!, add.bias], output: add.node.output };
          op = 'MatMul+Add';
        }
        const label = nodeLabel(node);
        const where = `${name}: node '${label}' (${op})`;
        const inputNames = node.input ?? [];
        const inputs: (Value | undefined)[] = inputNames.map((v) => (v ? b.values.get(v) : undefined));
        const out = node.output?.[0];
        if (!out) throw new FormatError(`${where}: the node has no output`);
        const result = ONNX_OPS.get(node.opType!)!({ node, op: node.opType!, attrs: new OnnxAttrs(node, where), where, inputs, opset: this.opset, limits: this.limits, upload: (h, s) => b.upload(h, s) });
        if (isFolded(result)) {
          checkedElements(result.shape, this.limits, `${where}: the folded value`);
          b.constant(out, result);
          continue;
        }
        const first = inputs.find((v): v is { kind: 'runtime'; shape: number[] } => v?.kind === 'runtime');
        b.step({ name: out, node: node.name || undefined, op, inputNames, prepared: result, perSample: result.shape.slice(1), inputPerSample: first ? first.shape.slice(1) : [] });
        if (node.name && node.name !== out) aliases.set(node.name, out);
      }
      for (const o of this.outputs) {
        if (b.values.get(o)?.kind !== 'runtime') throw new FormatError(`${name}: the output '${o}' is a constant, not computed from the input`);
      }
      const model = new OnnxModel(gpu, name, modelInput, sample, this.outputs, b.steps, b.uploaded, this.options.classNames, aliases);
      model.opset = this.opset;
      model.irVersion = toNumber(this.proto.irVersion);
      model.producer = [this.proto.producerName, this.proto.producerVersion].filter((s) => s).join(' ');
      model.metadata = new Map((this.proto.metadataProps ?? []).map((e) => [e.key ?? '', e.value ?? '']));
      return model;
    } catch (e) {
      b.dispose();
      throw e;
    }
  }
}

function nodeLabel(n: OnnxNodeProto): string {
  return n.name || n.output?.[0] || '(unnamed)';
}
