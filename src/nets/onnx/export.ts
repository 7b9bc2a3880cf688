/**
 * Our sequential models (ModelSpec + weights) written as ONNX files, with the same protobuf schema
 * the importer reads: conv2d → Conv, linear → Gemm (transB), relu → Relu, relu6 → Clip(0, 6),
 * leakyrelu → LeakyRelu, sigmoid, tanh, maxpool2d → MaxPool, avgpool2d → AveragePool, gap →
 * GlobalAveragePool + Flatten, flatten → Flatten, batchnorm → BatchNormalization, dropout →
 * Identity (inference), softmax → Softmax. Opset 13, a dynamic batch, node names and output names
 * after our layer names. Used to time other runtimes on exactly our network (`npm run bench --
 * --peer ort`), and to hand a model to ONNX tools.
 */
import { ArgumentError } from '../../runtime/errors.js';
import { samePadding } from '../../kernels/common.js';
import type { Model } from '../model.js';
import type { Pair } from '../spec.js';
import { DATA_TYPES, encodeModelProto, type OnnxAttributeProto, type OnnxNodeProto, type OnnxTensorProto } from './schema.js';

const ints = (name: string, v: readonly number[]): OnnxAttributeProto => ({ name, type: 7, ints: [...v] });
const int = (name: string, v: number): OnnxAttributeProto => ({ name, type: 2, i: v });
const float = (name: string, v: number): OnnxAttributeProto => ({ name, type: 1, f: v });
const pair = (p: Pair | undefined, fallback: number): [number, number] => (p === undefined ? [fallback, fallback] : typeof p === 'number' ? [p, p] : [p[0], p[1]]);

function tensorProto(name: string, dims: readonly number[], data: Float32Array): OnnxTensorProto {
  const raw = new Uint8Array(data.byteLength);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
  return { name, dims: [...dims], dataType: DATA_TYPES.FLOAT, rawData: raw };
}

/** ONNX pads [top, left, bottom, right] of a padding spec for a [H, W] input. */
function onnxPads(
  padding: number | [number, number] | [number, number, number, number] | 'same' | 'valid' | undefined,
  hw: [number, number],
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
): number[] {
  let p: [number, number, number, number];
  if (padding === undefined || padding === 'valid') p = [0, 0, 0, 0];
  else if (padding === 'same') p = samePadding(hw, kernel, stride, dilation);
  else if (typeof padding === 'number') p = [padding, padding, padding, padding];
  else if (padding.length === 2) p = [padding[0], padding[0], padding[1], padding[1]];
  else p = [...padding];
  return [p[0], p[2], p[1], p[3]];
}

/** The model as the bytes of an ONNX file (weights read back from the GPU). */
export async function modelToOnnx(model: Model, options: { name?: string } = {}): Promise<Uint8Array> {
  const nodes: OnnxNodeProto[] = [];
  const initializer: OnnxTensorProto[] = [];
  let value = 'input';
  for (const layer of model.layers) {
    const s = layer.spec as Record<string, unknown> & { type: string };
    const name = layer.name;
    const node = (opType: string, inputs: string[], attribute: OnnxAttributeProto[] = [], out = name): void => {
      nodes.push({ name, opType, input: inputs, output: [out], attribute });
      value = out;
    };
    const param = async (key: string) => {
      const t = layer.params.get(key);
      if (!t) return null;
      const id = `${name}.${key}`;
      initializer.push(tensorProto(id, t.shape, await t.read()));
      return id;
    };
    const hw = [layer.inputShape[1] ?? 1, layer.inputShape[2] ?? 1] as [number, number];
    switch (s.type) {
      case 'conv2d': {
        const kernel = pair(s.kernel as Pair, 1);
        const stride = pair(s.stride as Pair | undefined, 1);
        const dilation = pair(s.dilation as Pair | undefined, 1);
        const w = (await param('weight'))!;
        const b = await param('bias');
        const attrs = [ints('kernel_shape', kernel), ints('strides', stride), ints('dilations', dilation), int('group', (s.groups as number | undefined) ?? 1)];
        attrs.push(ints('pads', onnxPads(s.padding as never, hw, kernel, stride, dilation)));
        node('Conv', [value, w, ...(b ? [b] : [])], attrs);
        break;
      }
      case 'linear': {
        const w = (await param('weight'))!;
        const b = await param('bias');
        node('Gemm', [value, w, ...(b ? [b] : [])], [int('transB', 1)]);
        break;
      }
      case 'relu':
      case 'sigmoid':
      case 'tanh':
        node(s.type === 'relu' ? 'Relu' : s.type === 'sigmoid' ? 'Sigmoid' : 'Tanh', [value]);
        break;
      case 'leakyrelu':
        node('LeakyRelu', [value], [float('alpha', (s.alpha as number | undefined) ?? 0.01)]);
        break;
      case 'relu6': {
        initializer.push(tensorProto(`${name}.min`, [], Float32Array.of(0)), tensorProto(`${name}.max`, [], Float32Array.of(6)));
        node('Clip', [value, `${name}.min`, `${name}.max`]);
        break;
      }
      case 'maxpool2d':
      case 'avgpool2d': {
        const kernel = pair(s.kernel as Pair, 1);
        const stride = pair(s.stride as Pair | undefined, kernel[0]);
        const strides = s.stride === undefined ? kernel : stride;
        const attrs = [ints('kernel_shape', kernel), ints('strides', strides), ints('pads', onnxPads(s.padding as never, hw, kernel, strides, [1, 1])), int('ceil_mode', s.ceilMode ? 1 : 0)];
        // Our default, as the model builds it: padded cells count, except with 'same' padding (as Keras).
        if (s.type === 'avgpool2d') attrs.push(int('count_include_pad', ((s.countIncludePad as boolean | undefined) ?? s.padding !== 'same') ? 1 : 0));
        node(s.type === 'maxpool2d' ? 'MaxPool' : 'AveragePool', [value], attrs);
        break;
      }
      case 'gap':
        nodes.push({ name: `${name}/pool`, opType: 'GlobalAveragePool', input: [value], output: [`${name}/pool`] });
        value = `${name}/pool`;
        node('Flatten', [value], [int('axis', 1)]);
        break;
      case 'flatten':
        node('Flatten', [value], [int('axis', 1)]);
        break;
      case 'batchnorm': {
        const [w, b, m, v] = [await param('weight'), await param('bias'), await param('running_mean'), await param('running_var')];
        if (!w || !b || !m || !v) throw new ArgumentError(`modelToOnnx: batch-norm layer '${name}' lacks its statistics`);
        node('BatchNormalization', [value, w, b, m, v], [float('epsilon', (s.eps as number | undefined) ?? 1e-5)]);
        break;
      }
      case 'dropout':
        node('Identity', [value]);
        break;
      case 'softmax':
        node('Softmax', [value], [int('axis', 1)]); // ours is over the channels (axis 1), whatever the rank
        break;
      default:
        throw new ArgumentError(`modelToOnnx: layer '${name}' of type '${s.type}' has no ONNX form here`);
    }
  }
  const dims = (shape: readonly number[]) => ({ dim: [{ dimParam: 'batch' }, ...shape.map((d) => ({ dimValue: d }))] });
  const elem = DATA_TYPES.FLOAT;
  return encodeModelProto({
    irVersion: 8,
    producerName: 'webgpu-saliency',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: options.name ?? model.name,
      node: nodes,
      initializer,
      input: [{ name: 'input', type: { tensorType: { elemType: elem, shape: dims(model.inputShape) } } }],
      output: [{ name: value, type: { tensorType: { elemType: elem, shape: dims(model.outputShape) } } }],
    },
  });
}
