/**
 * A model of ours as an ONNX file, so that ONNX Runtime can run the same network with the same
 * weights (the benchmarks' ONNX Runtime peer). Every layer type of a ModelSpec maps to one or two
 * standard ONNX ops (opset 13): conv2d → Conv, linear → Gemm (transB), maxpool2d / avgpool2d →
 * MaxPool / AveragePool, gap → GlobalAveragePool + Flatten, flatten → Flatten, batchnorm →
 * BatchNormalization, relu / relu6 / sigmoid / tanh / leakyrelu → Relu / Clip / Sigmoid / Tanh /
 * LeakyRelu, softmax → Softmax, dropout → Identity. The input is 'input' [batch, C, H, W] (batch a
 * free dimension), the output 'output', the last layer's; weights are stored as raw float32.
 *
 * The wire format is protobufjs's, from a schema of the few ONNX messages written here (field
 * names and numbers as in ONNX's onnx.proto).
 */
import protobuf from 'protobufjs/light.js';
import type { Model } from '../nets/model.js';
import type { Pair } from '../nets/spec.js';
import { samePadding } from '../kernels/common.js';
import { ArgumentError } from '../runtime/errors.js';

const ONNX_OPSET = 13;
/** The IR version that goes with opset 13. */
const ONNX_IR_VERSION = 7;
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTRIBUTE_TYPES = { float: 1, int: 2, ints: 7 } as const;

const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            producerName: { type: 'string', id: 2 },
            producerVersion: { type: 'string', id: 3 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
          },
        },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            type: { type: 'int32', id: 20 },
          },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TypeProto: { fields: { tensorType: { type: 'TensorTypeProto', id: 1 } } },
        TensorTypeProto: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } } },
        Dimension: { fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } } },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
          },
        },
      },
    },
  },
};

interface Attribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
}
interface Node {
  opType: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Attribute[];
}
interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

const ints = (name: string, v: readonly number[]): Attribute => ({ name, type: ATTRIBUTE_TYPES.ints, ints: [...v] });
const int = (name: string, v: number): Attribute => ({ name, type: ATTRIBUTE_TYPES.int, i: v });
const float = (name: string, v: number): Attribute => ({ name, type: ATTRIBUTE_TYPES.float, f: v });
const pair = (v: Pair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

/** Our padding ([top, bottom, left, right] in pixels, or a spec form) as ONNX pads [top, left, bottom, right]. */
function onnxPads(
  padding: number | [number, number] | [number, number, number, number] | 'same' | 'valid' | undefined,
  input: readonly number[],
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
): number[] {
  let p: [number, number, number, number];
  if (padding === 'same') p = samePadding([input[1]!, input[2]!], kernel, stride, dilation);
  else if (padding === undefined || padding === 'valid') p = [0, 0, 0, 0];
  else if (typeof padding === 'number') p = [padding, padding, padding, padding];
  else if (padding.length === 2) p = [padding[0], padding[0], padding[1], padding[1]];
  else p = padding;
  return [p[0], p[2], p[1], p[3]];
}

const LITTLE_ENDIAN = new Uint8Array(Float32Array.of(1).buffer)[3] === 0x3f;

/** float32 values as ONNX's raw_data holds them: little-endian bytes. */
function floatBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
  return out;
}

/**
 * Writes `model` (its architecture and current weights) as an ONNX ModelProto. The file computes
 * what `model.forward` computes, every layer included.
 */
export async function modelToOnnx(model: Model): Promise<Uint8Array> {
  const nodes: Node[] = [];
  const initializers: Initializer[] = [];
  const addWeight = async (name: string, layer: Model['layers'][number], key: string, reshape?: number[]) => {
    const t = layer.params.get(key);
    if (!t) return null;
    initializers.push({ name, dims: reshape ?? [...t.shape], dataType: FLOAT, rawData: floatBytes(await t.read()) });
    return name;
  };
  const constant = (name: string, value: number) => {
    initializers.push({ name, dims: [], dataType: FLOAT, rawData: floatBytes(Float32Array.of(value)) });
    return name;
  };
  let current = 'input';
  const node = (opType: string, name: string, inputs: string[], attribute: Attribute[] = [], output = `${name}/out`) => {
    nodes.push({ opType, name, input: inputs, output: [output], attribute });
    current = output;
  };

  for (const layer of model.layers) {
    const s = layer.spec;
    const n = layer.name;
    switch (s.type) {
      case 'conv2d': {
        const kernel = pair(s.kernel, 0);
        const stride = pair(s.stride, 1);
        const dilation = pair(s.dilation, 1);
        const inputs = [current, (await addWeight(`${n}.weight`, layer, 'weight'))!];
        const bias = await addWeight(`${n}.bias`, layer, 'bias');
        if (bias) inputs.push(bias);
        node('Conv', n, inputs, [
          ints('kernel_shape', kernel),
          ints('strides', stride),
          ints('dilations', dilation),
          ints('pads', onnxPads(s.padding, layer.inputShape, kernel, stride, dilation)),
          int('group', s.groups ?? 1),
        ]);
        break;
      }
      case 'linear': {
        const inputs = [current, (await addWeight(`${n}.weight`, layer, 'weight'))!];
        const bias = await addWeight(`${n}.bias`, layer, 'bias');
        if (bias) inputs.push(bias);
        node('Gemm', n, inputs, [int('transB', 1)]);
        break;
      }
      case 'maxpool2d':
      case 'avgpool2d': {
        const kernel = pair(s.kernel, 0);
        const stride = s.stride === undefined ? kernel : pair(s.stride, 1);
        const attrs = [ints('kernel_shape', kernel), ints('strides', stride), ints('pads', onnxPads(s.padding, layer.inputShape, kernel, stride, [1, 1])), int('ceil_mode', s.ceilMode ? 1 : 0)];
        if (s.type === 'avgpool2d') attrs.push(int('count_include_pad', (s.countIncludePad ?? s.padding !== 'same') ? 1 : 0));
        node(s.type === 'maxpool2d' ? 'MaxPool' : 'AveragePool', n, [current], attrs);
        break;
      }
      case 'gap':
        node('GlobalAveragePool', `${n}.pool`, [current]);
        node('Flatten', n, [current], [int('axis', 1)]);
        break;
      case 'flatten':
        node('Flatten', n, [current], [int('axis', 1)]);
        break;
      case 'batchnorm': {
        const w = await Promise.all(['weight', 'bias', 'running_mean', 'running_var'].map((k) => addWeight(`${n}.${k}`, layer, k)));
        if (w.some((v) => v === null)) throw new ArgumentError(`onnx export: batchnorm layer '${n}' lacks one of weight, bias, running_mean, running_var`);
        node('BatchNormalization', n, [current, ...(w as string[])], [float('epsilon', s.eps ?? 1e-5)]);
        break;
      }
      case 'relu':
        node('Relu', n, [current]);
        break;
      case 'relu6':
        node('Clip', n, [current, constant(`${n}.min`, 0), constant(`${n}.max`, 6)]);
        break;
      case 'sigmoid':
        node('Sigmoid', n, [current]);
        break;
      case 'tanh':
        node('Tanh', n, [current]);
        break;
      case 'leakyrelu':
        node('LeakyRelu', n, [current], [float('alpha', s.alpha ?? 0.01)]);
        break;
      case 'softmax':
        node('Softmax', n, [current], [int('axis', 1)]);
        break;
      case 'dropout':
        node('Identity', n, [current]);
        break;
      default:
        throw new ArgumentError(`onnx export: layer '${n}' has type '${(s as { type: string }).type}', which has no ONNX form here`);
    }
  }
  if (nodes.length) nodes[nodes.length - 1]!.output = ['output'];
  else node('Identity', 'identity', [current], [], 'output');

  const dims = (shape: readonly number[]) => ({ dim: [{ dimParam: 'batch' }, ...shape.map((d) => ({ dimValue: d }))] });
  const root = protobuf.Root.fromJSON(SCHEMA);
  const type = root.lookupType('onnx.ModelProto');
  const message = type.fromObject({
    irVersion: ONNX_IR_VERSION,
    producerName: 'webgpu-saliency',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: model.name,
      node: nodes,
      initializer: initializers,
      input: [{ name: 'input', type: { tensorType: { elemType: FLOAT, shape: dims(model.inputShape) } } }],
      output: [{ name: 'output', type: { tensorType: { elemType: FLOAT, shape: dims(model.outputShape) } } }],
    },
  });
  return type.encode(message).finish();
}
