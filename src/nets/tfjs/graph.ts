/**
 * TF.js graph models (the model.json and *.bin weight shards that tensorflowjs_converter writes)
 * on the shared graph executor (graph/executor.ts): this module orders the nodes, reads the input
 * placeholder and turns each node into a step through the TF.js op table (ops/index.ts).
 *
 * Layout: see layout.ts (NHWC graphs run NCHW). Fused activations (_FusedConv2D,
 * FusedDepthwiseConv2dNative, _FusedMatMul) run through our conv2d/linear `activation` option,
 * whose backward goes through the tape's activation rules: guided backprop and DeconvNet change them
 * like separate ReLUs.
 *
 * An unsupported op gets a FormatError naming it and its node; a graph whose post-processing uses
 * such ops (CenterNet's TopKV2, GatherV2, …) can still be imported up to the outputs that need none
 * of them, with `{ outputs }` (see centernet.ts).
 */
import { ArgumentError, FormatError } from '../../runtime/errors.js';
import type { Gpu } from '../../runtime/gpu.js';
import { dependencyOrder, GraphBuilder, GraphModel, graphLimits, isFolded, unsupportedOpsError, type GraphLayer, type GraphForwardOptions } from '../graph/executor.js';
import { checkedElements, type GraphLimits, type HostTensor } from '../graph/host.js';
import type { Limits } from '../../runtime/limits.js';
import { readTfjsArtifacts, type TfjsGraphSource } from './artifacts.js';
import { Attrs, checkModelJson, parseInput, shapeOf, stripIndex, type TfjsModelJson, type TfjsNode } from './format.js';
import { ours } from './layout.js';
import { SUPPORTED_TFJS_OPS, TFJS_OPS } from './ops/index.js';

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
  /** Limits on declared sizes for this load (runtime/limits.ts: maxTensorElements, maxModelBytes; default the library's). */
  limits?: Partial<Limits>;
}

/** One layer of an imported TF.js graph: a node, with its TF op and input node names. */
export type TfjsLayer = GraphLayer;

export type TfjsForwardOptions = GraphForwardOptions;

/** An imported TF.js graph model: the shared GraphModel, plus the model.json it came from. */
export class TfjsGraphModel extends GraphModel {
  /** The model.json it came from. */
  modelJson!: TfjsModelJson;

  protected override canonical(name: string): string {
    return super.canonical(stripIndex(name));
  }

  protected override describeCopy(copy: this): void {
    copy.modelJson = this.modelJson;
  }
}

/**
 * Loads a TF.js graph model: a model.json path (Node) or URL (fetched; relative URLs resolve
 * against the page), or the parsed JSON with its weights. The weights are dequantised and moved to
 * the GPU in our layout; the returned model runs on our kernels and autodiff.
 */
export async function loadTfjsGraphModel(gpu: Gpu, source: string | URL | TfjsGraphSource, options: TfjsGraphOptions = {}): Promise<TfjsGraphModel> {
  const limits = graphLimits(gpu, options.limits);
  const artifacts = await readTfjsArtifacts(source, 'loadTfjsGraphModel', limits);
  const model = checkModelJson(artifacts.json, artifacts.where);
  const graph = new GraphDef(model, { ...options, name: options.name ?? artifacts.name ?? 'tfjs-graph' }); // topology errors before reading weights
  return graph.build(gpu, await artifacts.weights(model.weightsManifest), limits);
}

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
      if (this.nodes.has(n.name)) throw new FormatError(`${name}: two graph nodes are named '${n.name}'`);
      this.nodes.set(n.name, n);
    }
    const consumed = new Set<string>();
    for (const n of list) for (const i of n.input ?? []) consumed.add(parseInput(i)?.node ?? '');
    let outputs = options.outputs?.map(stripIndex);
    if (!outputs?.length) {
      const sig = Object.values(json.signature?.outputs ?? {}).map((o) => stripIndex(o.name));
      outputs = sig.length ? sig : list.filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'Placeholder').map((n) => n.name);
    }
    if (!outputs.length) throw new FormatError(`${name}: the graph has no outputs`);
    for (const o of outputs) {
      if (o.includes(':')) throw new ArgumentError(`${name}: output '${o}' is not output 0 of its node; only single-output nodes can be model outputs`);
      if (!this.nodes.has(o)) throw new ArgumentError(`${name}: there is no node named '${o}' to output`);
    }
    this.outputs = outputs;
    this.order = this.topologicalOrder(outputs);
    // Unsupported ops, with what could still be computed.
    const bad = this.order.filter((n) => n.op !== 'Const' && n.op !== 'Placeholder' && !TFJS_OPS.has(n.op));
    if (bad.length) {
      const ok = outputs.filter((o) => !this.topologicalOrder([o]).some((n) => bad.includes(n)));
      throw unsupportedOpsError(name, bad, ok, SUPPORTED_TFJS_OPS);
    }
    const inputs = this.order.filter((n) => n.op === 'Placeholder');
    if (inputs.length !== 1) {
      throw new FormatError(`${name}: the outputs depend on ${inputs.length} placeholders (${inputs.map((n) => n.name).join(', ') || 'none'}); graphs with exactly one input are supported`);
    }
    this.input = inputs[0]!;
    for (const n of this.order) {
      for (const i of n.input ?? []) {
        const p = parseInput(i);
        if (p && p.index !== 0) throw new FormatError(`${name}: node '${n.name}' reads output ${p.index} of '${p.node}'; only single-output ops are supported`);
      }
    }
  }

  /** The nodes the given nodes depend on (data inputs only), dependencies first. */
  topologicalOrder(targets: readonly string[]): TfjsNode[] {
    const node = (name: string) => {
      const n = this.nodes.get(name);
      if (!n) throw new FormatError(`${this.options.name}: an input refers to a missing node '${name}'`);
      return n;
    };
    const deps = (n: TfjsNode) => (n.input ?? []).map(parseInput).filter((p): p is { node: string; index: number } => !!p).map((p) => node(p.node));
    return dependencyOrder(targets.map(node), deps, (n) => n.name, this.options.name);
  }

  /** The placeholder's TF shape (−1 unknown), from its attribute or the signature, or the option. */
  private inputTfShape(): number[] {
    const name = this.options.name;
    let tfShape = new Attrs(this.input, name).shape('shape');
    if (!tfShape) {
      const sig = Object.values(this.json.signature?.inputs ?? {}).find((s) => stripIndex(s.name) === this.input.name);
      tfShape = shapeOf(sig?.tensorShape, `${name}: signature input '${this.input.name}'`);
    }
    const given = this.options.inputShape;
    if (!tfShape) {
      if (!given) throw new ArgumentError(`${name}: the input placeholder '${this.input.name}' has no shape; pass { inputShape: [C, H, W] }`);
      tfShape = [-1, ...(given.length === 3 ? [given[1]!, given[2]!, given[0]!] : given)];
    }
    return tfShape;
  }

  /** Uploads the weights and prepares every node. */
  build(gpu: Gpu, weights: Map<string, HostTensor>, limits: GraphLimits): TfjsGraphModel {
    const name = this.options.name;
    const b = new GraphBuilder(gpu, name, limits);
    try {
      const tfShape = this.inputTfShape();
      const staticBatch = tfShape[0]! > 0 ? tfShape[0]! : 1;
      let sample = ours(tfShape).slice(1);
      const given = this.options.inputShape;
      if (given) {
        if (given.length !== sample.length || given.some((d, i) => sample[i] !== -1 && sample[i] !== d)) {
          throw new ArgumentError(`${name}: inputShape ${JSON.stringify(given)} does not match the placeholder's [${sample.join(', ')}] (our layout, per sample)`);
        }
        sample = [...given];
      }
      if (sample.some((d) => !(d > 0))) {
        throw new ArgumentError(`${name}: the input placeholder's shape [${sample.join(', ')}] (per sample, our layout) is not fully known; pass { inputShape }`);
      }
      checkedElements(sample, limits, `${name}: the input`);
      b.runtime(this.input.name, [-1, ...(tfShape.length === 4 ? [sample[1]!, sample[2]!, sample[0]!] : sample)]);
      for (const node of this.order) {
        if (node === this.input) continue;
        const where = `${name}: node '${node.name}' (${node.op})`;
        if (node.op === 'Const') {
          const h = weights.get(node.name);
          if (!h) throw new FormatError(`${where}: no weights for this constant in the weights manifest`);
          b.constant(node.name, h);
          continue;
        }
        const inputNames = (node.input ?? []).map(parseInput).filter((p): p is { node: string; index: number } => !!p).map((p) => p.node);
        const inputs = inputNames.map((n) => b.values.get(n)!);
        const result = TFJS_OPS.get(node.op)!({ node, attrs: new Attrs(node, where), where, inputs, upload: (h, s) => b.upload(h, s), staticBatch });
        if (isFolded(result)) {
          b.constant(node.name, result);
          continue;
        }
        const firstRuntime = inputs.find((v): v is { kind: 'runtime'; shape: number[] } => v.kind === 'runtime');
        b.step({
          name: node.name,
          op: node.op,
          inputNames,
          prepared: result,
          perSample: ours(result.shape).slice(1),
          inputPerSample: firstRuntime ? ours(firstRuntime.shape).slice(1) : [],
        });
      }
      for (const o of this.outputs) {
        if (b.values.get(o)?.kind !== 'runtime') throw new FormatError(`${name}: output '${o}' is a constant, not computed from the input`);
      }
      const model = new TfjsGraphModel(gpu, name, this.input.name, sample, this.outputs, b.steps, b.uploaded, this.options.classNames);
      model.modelJson = this.json;
      return model;
    } catch (e) {
      b.dispose();
      throw e;
    }
  }
}
