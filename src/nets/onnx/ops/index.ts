/**
 * The ONNX op table (default domain): op name → builder, one module per op family, as ONNX
 * Runtime's op resolve rules read. A Map, so that an op name from a file ('constructor',
 * '__proto__') can only find what is listed here.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { activation, clip, hardSigmoid, hardSwish, prelu, softmax } from './activation.js';
import type { OnnxOpBuilder } from './context.js';
import { conv } from './conv.js';
import { convTranspose } from './convtranspose.js';
import { binary, equal, extremum, neg, sum, where } from './elementwise.js';
import { gemm, matmul } from './gemm.js';
import { batchNormalization } from './normalization.js';
import { pad } from './pad.js';
import { globalAveragePool, globalMaxPool, pool } from './pool.js';
import { reduceMax, reduceMean, reduceSum } from './reduce.js';
import { resize } from './resize.js';
import { cast, concat, constant, constantOfShape, expand, flatten, gather, identity, reshape, shape, size, slice, squeeze, transpose, unsqueeze } from './shape.js';

export type { OnnxContext, OnnxOpBuilder } from './context.js';

export const ONNX_OPS: ReadonlyMap<string, OnnxOpBuilder> = new Map<string, OnnxOpBuilder>([
  // Convolution and pooling
  ['Conv', conv],
  ['ConvTranspose', convTranspose],
  ['MaxPool', pool('max')],
  ['AveragePool', pool('avg')],
  ['GlobalAveragePool', globalAveragePool],
  ['GlobalMaxPool', globalMaxPool],
  ['BatchNormalization', batchNormalization],
  // Matrix products
  ['Gemm', gemm],
  ['MatMul', matmul],
  // Elementwise
  ['Add', binary(ops.add, 'add')],
  ['Sub', binary(ops.sub, 'sub')],
  ['Mul', binary(ops.mul, 'mul')],
  ['Div', binary(ops.div, 'div')],
  ['Sum', sum],
  ['Max', extremum],
  ['Min', extremum],
  ['Equal', equal],
  ['Where', where],
  ['Neg', neg],
  // Activations
  ['Relu', activation('relu')],
  ['LeakyRelu', activation('leakyrelu')],
  ['Sigmoid', activation('sigmoid')],
  ['Tanh', activation('tanh')],
  ['Clip', clip],
  ['HardSigmoid', hardSigmoid],
  ['HardSwish', hardSwish],
  ['PRelu', prelu],
  ['Softmax', softmax(false)],
  ['LogSoftmax', softmax(true)],
  // Shapes
  ['Identity', identity('identity')],
  ['Dropout', identity('dropout')],
  ['Constant', constant],
  ['Shape', shape],
  ['Size', size],
  ['Gather', gather],
  ['Cast', cast],
  ['Unsqueeze', unsqueeze],
  ['Squeeze', squeeze],
  ['Concat', concat],
  ['Reshape', reshape],
  ['Flatten', flatten],
  ['Transpose', transpose],
  ['Slice', slice],
  ['ConstantOfShape', constantOfShape],
  ['Expand', expand],
  ['Pad', pad],
  ['Resize', resize],
  ['Upsample', resize],
  ['ReduceMean', reduceMean],
  ['ReduceSum', reduceSum],
  ['ReduceMax', reduceMax],
]);

/** The ONNX ops (default domain) that imported models may use. */
export const SUPPORTED_ONNX_OPS: readonly string[] = Object.freeze([...ONNX_OPS.keys()].sort());
