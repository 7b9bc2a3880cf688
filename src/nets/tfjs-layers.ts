/**
 * Import of TF.js **layers** models (Keras `model.json`: `"format": "layers-model"`, as written by
 * `model.save()` in TF.js or by `tensorflowjs_converter` from a Keras .h5). The Keras config is
 * translated layer by layer into our ModelSpec, and the weights into our layout, so the result is
 * an ordinary Model: every saliency method, layer hooks by the Keras layer names, fused kernels.
 *
 * Supported: Sequential models, and functional models that are a single chain; layers InputLayer,
 * Conv2D, DepthwiseConv2D, Dense, Flatten, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
 * BatchNormalization, Dropout, Activation, ReLU, LeakyReLU and Softmax; activations linear, relu,
 * relu6, sigmoid, tanh and softmax; channels_last data.
 *
 * Layout: Keras runs NHWC; the imported model takes NCHW like every model here. Kernels
 * [kh, kw, in, out] become [out, in, kh, kw]; a Dense layer after a Flatten of a feature map has
 * its rows reordered, because Keras flattens in (H, W, C) order and we flatten in (C, H, W).
 */
import { ArgumentError, FormatError, SaliencyError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import { modelFromSpec, type Model } from './model.js';
import type { LayerSpec, ModelSpec, Weights } from './spec.js';
import type { HostTensor } from './graph/host.js';
import { readTfjsArtifacts, type TfjsGraphSource } from './tfjs/artifacts.js';
import { checkWeightsManifest, type TfjsWeightsGroup } from './tfjs/format.js';
import { loadTfjsGraphModel, type TfjsGraphModel } from './tfjs/graph.js';

export interface TfjsLayersOptions {
  /** Class names of the output, if the model.json does not say. */
  classNames?: string[];
  /** A name for messages. Default: the model.json file name without '.json'. */
  name?: string;
}

interface KerasLayer {
  class_name: string;
  config: Record<string, unknown> & { name?: string };
  inbound_nodes?: unknown[];
}

const SUPPORTED = [
  'InputLayer', 'Conv2D', 'DepthwiseConv2D', 'Dense', 'Flatten', 'MaxPooling2D', 'AveragePooling2D',
  'GlobalAveragePooling2D', 'BatchNormalization', 'Dropout', 'Activation', 'ReLU', 'LeakyReLU', 'Softmax',
]; // prettier-ignore

/** Loads a TF.js layers model (Keras model.json) from a path, a URL or memory. */
export async function loadTfjsLayersModel(gpu: Gpu, source: string | URL | TfjsGraphSource, options: TfjsLayersOptions = {}): Promise<Model> {
  const artifacts = await readTfjsArtifacts(source, 'loadTfjsLayersModel');
  const where = artifacts.where;
  const json = artifacts.json as { format?: string; modelTopology?: Record<string, unknown>; weightsManifest?: TfjsWeightsGroup[] };
  const topology = json.modelTopology;
  if (!topology || typeof topology !== 'object') throw new FormatError(`${where}: no modelTopology`);
  if (Array.isArray((topology as { node?: unknown }).node)) {
    throw new FormatError(`${where} is a TF.js graph model; load it with loadTfjsGraphModel`);
  }
  // TF.js writes the Keras model config as modelTopology itself; the Python converter nests it.
  const config = ('model_config' in topology ? topology.model_config : topology) as { class_name?: string; config?: unknown };
  const layers = chain(config, where);
  const manifest = checkWeightsManifest(json.weightsManifest, where);
  const { spec, weightsFrom } = translate(layers, where, options.name ?? artifacts.name ?? 'tfjs-layers');
  if (options.classNames) spec.classes = [...options.classNames];
  const weights = weightsFrom(await artifacts.weights(manifest));
  return modelFromSpec(gpu, spec, weights);
}

/** The layers of a Sequential model, or of a functional model that is one chain, in order. */
function chain(config: { class_name?: string; config?: unknown }, where: string): KerasLayer[] {
  const kind = config?.class_name;
  const body = config?.config as { layers?: KerasLayer[] } | KerasLayer[] | undefined;
  const layers = Array.isArray(body) ? body : body?.layers; // old Keras: Sequential config is the list
  if (!Array.isArray(layers) || !layers.length) throw new ArgumentError(`${where}: the model config has no layers`);
  if (kind === 'Sequential') return layers;
  if (kind === 'Model' || kind === 'Functional') {
    // Each layer must take exactly the previous one's output.
    layers.forEach((l, i) => {
      const inbound = JSON.stringify(l.inbound_nodes ?? []);
      const ok = i === 0 ? inbound === '[]' : inbound.includes(`"${layers[i - 1]!.config.name}"`) && (l.inbound_nodes?.length ?? 0) === 1;
      if (!ok) throw new ArgumentError(`${where}: layer '${l.config.name}' is not fed by the layer before it; only chains of layers (Sequential) are supported`);
    });
    return layers;
  }
  throw new ArgumentError(`${where}: unsupported model class '${kind}'; Sequential or a functional chain is supported`);
}

type Shape = [number, number, number] | [number];

function pair(v: unknown, where: string, what: string): [number, number] {
  const r = typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? v : null;
  if (!r || !r.every((x) => Number.isInteger(x) && x > 0)) throw new ArgumentError(`${where}: ${what} must be a positive integer or a pair, got ${JSON.stringify(v)}`);
  return [r[0] as number, r[1] as number];
}

function outSize(n: number, k: number, s: number, d: number, padding: string): number {
  return padding === 'same' ? Math.ceil(n / s) : Math.floor((n - d * (k - 1) - 1) / s) + 1;
}

/** The spec, and a function that turns the decoded weights into ours. */
function translate(layers: KerasLayer[], where: string, name: string): { spec: ModelSpec; weightsFrom: (w: Map<string, HostTensor>) => Weights } {
  const first = layers[0]!.config;
  const inputShape = (first.batch_input_shape ?? first.batchInputShape ?? first.batch_shape) as (number | null)[] | undefined;
  if (!Array.isArray(inputShape) || inputShape.length !== 4 || inputShape.slice(1).some((d) => !Number.isInteger(d))) {
    throw new ArgumentError(`${where}: the first layer must give an image input shape [null, H, W, C], got ${JSON.stringify(inputShape)}`);
  }
  const [, h0, w0, c0] = inputShape as number[];
  let shape: Shape = [c0!, h0!, w0!];
  const spec: LayerSpec[] = [];
  // How to read each layer's weights, run once the weights are decoded.
  const readers: ((get: (param: string) => HostTensor, out: Weights) => void)[] = [];
  /** The feature-map shape [C, H, W] a Flatten saw, until the Dense after it has used it. */
  let flattened: [number, number, number] | null = null;

  const activation = (lname: string, act: unknown, at: string) => {
    switch (act ?? 'linear') {
      case 'linear':
        return;
      case 'relu':
      case 'relu6':
      case 'sigmoid':
      case 'tanh':
        spec.push({ name: `${lname}_${act}`, type: act as 'relu' | 'relu6' | 'sigmoid' | 'tanh' });
        return;
      case 'softmax':
        spec.push({ name: `${lname}_softmax`, type: 'softmax' });
        return;
      default:
        throw new ArgumentError(`${at}: activation '${String(act)}' is not supported (linear, relu, relu6, sigmoid, tanh, softmax)`);
    }
  };

  for (const layer of layers) {
    const c = layer.config;
    const lname = String(c.name ?? layer.class_name);
    const at = `${where}: layer '${lname}' (${layer.class_name})`;
    if (c.data_format === 'channels_first') throw new ArgumentError(`${at}: channels_first data is not supported`);
    const image = () => {
      if (shape.length !== 3) throw new ShapeError(`${at} needs an image input [H, W, C], but gets ${formatShape(shape)} features`);
      return shape as [number, number, number];
    };
    switch (layer.class_name) {
      case 'InputLayer':
        break;
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const [cin, h, w] = image();
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        const kernel = pair(c.kernel_size, at, 'kernel_size');
        const stride = pair(c.strides ?? 1, at, 'strides');
        const dilation = pair(c.dilation_rate ?? 1, at, 'dilation_rate');
        const padding = String(c.padding ?? 'valid');
        if (padding !== 'same' && padding !== 'valid') throw new ArgumentError(`${at}: padding '${padding}' is not supported`);
        const mult = depthwise ? Number(c.depth_multiplier ?? 1) : 0;
        const cout = depthwise ? cin * mult : Number(c.filters);
        const groups = depthwise ? cin : 1;
        const bias = c.use_bias !== false;
        spec.push({ name: lname, type: 'conv2d', in: cin, out: cout, kernel, stride, dilation, padding, groups, bias });
        readers.push((get, out) => {
          const k = get(depthwise ? 'depthwise_kernel' : 'kernel');
          expectShape(k, depthwise ? [kernel[0], kernel[1], cin, mult] : [kernel[0], kernel[1], cin, cout], `${at}: kernel`);
          // [kh, kw, in, out] (depthwise: [kh, kw, in, mult], output channel = in·mult + m) → [out, in/groups, kh, kw].
          const [kh, kw] = kernel;
          const cinG = depthwise ? 1 : cin;
          const wt = new Float32Array(cout * cinG * kh * kw);
          for (let y = 0; y < kh; y++) {
            for (let x = 0; x < kw; x++) {
              for (let i = 0; i < cin; i++) {
                for (let o = 0; o < (depthwise ? mult : cout); o++) {
                  const src = ((y * kw + x) * cin + i) * (depthwise ? mult : cout) + o;
                  const oc = depthwise ? i * mult + o : o;
                  const ic = depthwise ? 0 : i;
                  wt[((oc * cinG + ic) * kh + y) * kw + x] = k.data[src]!;
                }
              }
            }
          }
          out[lname] = { weight: wt, ...(bias ? { bias: vector(get('bias'), cout, `${at}: bias`) } : {}) };
        });
        shape = [cout, outSize(h, kernel[0], stride[0], dilation[0], padding), outSize(w, kernel[1], stride[1], dilation[1], padding)];
        activation(lname, c.activation, at);
        break;
      }
      case 'Dense': {
        if (shape.length !== 1) throw new ShapeError(`${at} needs features [F], but gets an image ${formatShape(shape)}; add a Flatten`);
        const fin = shape[0];
        const units = Number(c.units);
        const bias = c.use_bias !== false;
        const perm = flattened;
        spec.push({ name: lname, type: 'linear', in: fin, out: units, bias });
        readers.push((get, out) => {
          const k = get('kernel');
          expectShape(k, [fin, units], `${at}: kernel`);
          // Keras: [in, out] with in in (H, W, C) order after a Flatten; ours: [out, in], in in (C, H, W) order.
          const wt = new Float32Array(units * fin);
          for (let i = 0; i < fin; i++) {
            let j = i;
            if (perm) {
              const [ch, hh, ww] = perm;
              const cc = i % ch;
              const pix = Math.floor(i / ch);
              j = cc * hh * ww + pix; // pix = y·W + x
            }
            for (let o = 0; o < units; o++) wt[o * fin + j] = k.data[i * units + o]!;
          }
          out[lname] = { weight: wt, ...(bias ? { bias: vector(get('bias'), units, `${at}: bias`) } : {}) };
        });
        flattened = null;
        shape = [units];
        activation(lname, c.activation, at);
        break;
      }
      case 'Flatten': {
        const s = image();
        spec.push({ name: lname, type: 'flatten' });
        flattened = s[1] * s[2] > 1 ? s : null; // one pixel: both orders agree
        shape = [s[0] * s[1] * s[2]];
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const [ch, h, w] = image();
        const kernel = pair(c.pool_size ?? 2, at, 'pool_size');
        const stride = c.strides == null ? kernel : pair(c.strides, at, 'strides');
        const padding = String(c.padding ?? 'valid');
        if (padding !== 'same' && padding !== 'valid') throw new ArgumentError(`${at}: padding '${padding}' is not supported`);
        spec.push({ name: lname, type: layer.class_name === 'MaxPooling2D' ? 'maxpool2d' : 'avgpool2d', kernel, stride, padding });
        shape = [ch, outSize(h, kernel[0], stride[0], 1, padding), outSize(w, kernel[1], stride[1], 1, padding)];
        break;
      }
      case 'GlobalAveragePooling2D': {
        const [ch] = image();
        spec.push({ name: lname, type: 'gap' });
        shape = [ch];
        break;
      }
      case 'BatchNormalization': {
        const features = shape[0];
        const axis = c.axis;
        if (axis !== undefined && axis !== -1 && axis !== shape.length && !(Array.isArray(axis) && (axis[0] === -1 || axis[0] === shape.length))) {
          throw new ArgumentError(`${at}: only normalisation over the channel axis (-1) is supported, got axis ${JSON.stringify(axis)}`);
        }
        spec.push({ name: lname, type: 'batchnorm', features, eps: Number(c.epsilon ?? 1e-3) });
        readers.push((get, out) => {
          const has = (p: string) => c[p === 'gamma' ? 'scale' : 'center'] !== false;
          out[lname] = {
            weight: has('gamma') ? vector(get('gamma'), features, `${at}: gamma`) : new Float32Array(features).fill(1),
            bias: has('beta') ? vector(get('beta'), features, `${at}: beta`) : new Float32Array(features),
            running_mean: vector(get('moving_mean'), features, `${at}: moving_mean`),
            running_var: vector(get('moving_variance'), features, `${at}: moving_variance`),
          };
        });
        break;
      }
      case 'Dropout':
        spec.push({ name: lname, type: 'dropout', p: Number(c.rate ?? 0.5) });
        break;
      case 'Activation':
        if (c.activation === 'linear') break;
        if (c.activation === 'softmax') spec.push({ name: lname, type: 'softmax' });
        else if (['relu', 'relu6', 'sigmoid', 'tanh'].includes(String(c.activation))) spec.push({ name: lname, type: c.activation as 'relu' });
        else throw new ArgumentError(`${at}: activation '${String(c.activation)}' is not supported (linear, relu, relu6, sigmoid, tanh, softmax)`);
        break;
      case 'ReLU': {
        const max = c.max_value ?? c.maxValue;
        const slope = Number(c.negative_slope ?? 0);
        if ((max == null && slope === 0) || (max === 6 && slope === 0)) spec.push({ name: lname, type: max === 6 ? 'relu6' : 'relu' });
        else if (max == null) spec.push({ name: lname, type: 'leakyrelu', alpha: slope });
        else throw new ArgumentError(`${at}: ReLU with max_value ${String(max)} and negative_slope ${slope} is not supported (plain, max 6, or leaky)`);
        break;
      }
      case 'LeakyReLU':
        spec.push({ name: lname, type: 'leakyrelu', alpha: Number(c.alpha ?? c.negative_slope ?? 0.3) });
        break;
      case 'Softmax':
        spec.push({ name: lname, type: 'softmax' });
        break;
      default:
        throw new ArgumentError(`${at}: layer class '${layer.class_name}' is not supported; supported: ${SUPPORTED.join(', ')}`);
    }
  }

  const weightsFrom = (decoded: Map<string, HostTensor>): Weights => {
    const out: Weights = {};
    let k = 0;
    for (const layer of layers) {
      const lname = String(layer.config.name ?? layer.class_name);
      if (!['Conv2D', 'DepthwiseConv2D', 'Dense', 'BatchNormalization'].includes(layer.class_name)) continue;
      const get = (param: string): HostTensor => {
        const exact = decoded.get(`${lname}/${param}`);
        if (exact) return exact;
        // The Python converter may prefix scopes (e.g. 'sequential/dense/kernel').
        const suffix = [...decoded.keys()].find((n) => n.endsWith(`/${lname}/${param}`));
        if (suffix) return decoded.get(suffix)!;
        throw new ArgumentError(`${where}: the weights have no '${lname}/${param}' for layer '${lname}' (${layer.class_name})`);
      };
      readers[k++]!(get, out);
    }
    return out;
  };
  return { spec: { name, input: [c0!, h0!, w0!], layers: spec }, weightsFrom };
}

function expectShape(t: HostTensor, shape: number[], what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${what} has shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`);
  }
}

function vector(t: HostTensor, n: number, what: string): Float32Array {
  expectShape(t, [n], what);
  return Float32Array.from(t.data);
}

/**
 * Loads either kind of TF.js model.json: a graph model (loadTfjsGraphModel) or a layers model
 * (loadTfjsLayersModel), whichever the file is.
 */
export async function loadTfjsModel(
  gpu: Gpu,
  source: string | URL | TfjsGraphSource,
  options: { classNames?: string[]; name?: string; inputShape?: number[] } = {},
): Promise<Model | TfjsGraphModel> {
  try {
    return await loadTfjsGraphModel(gpu, source, options);
  } catch (e) {
    if (e instanceof SaliencyError && /is a TF.js layers model/.test(e.message)) return loadTfjsLayersModel(gpu, source, options);
    throw e;
  }
}
