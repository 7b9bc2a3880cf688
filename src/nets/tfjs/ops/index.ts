/**
 * The TF.js op table: op name → builder, one module per op family. A Map, so that an op name from
 * a file ('constructor', '__proto__') can only find what is listed here.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { activation, softmax } from './activation.js';
import type { TfjsOpBuilder } from './context.js';
import { conv } from './conv.js';
import { addN, biasAdd, binary } from './elementwise.js';
import { matmul } from './matmul.js';
import { fusedBatchNorm } from './normalization.js';
import { pool } from './pool.js';
import { max, mean, sum } from './reduce.js';
import { resize } from './resize.js';
import { concat, expandDims, identity, pad, reshape, squeeze } from './shape.js';

export type { TfjsContext, TfjsOpBuilder } from './context.js';

export const TFJS_OPS: ReadonlyMap<string, TfjsOpBuilder> = new Map<string, TfjsOpBuilder>([
  ['Identity', identity],
  ['StopGradient', identity],
  ['Snapshot', identity],
  ['Conv2D', conv(false, false)],
  ['_FusedConv2D', conv(false, true)],
  ['DepthwiseConv2dNative', conv(true, false)],
  ['FusedDepthwiseConv2dNative', conv(true, true)],
  ['MatMul', matmul(false)],
  ['_FusedMatMul', matmul(true)],
  ['BiasAdd', biasAdd],
  ['FusedBatchNorm', fusedBatchNorm],
  ['FusedBatchNormV3', fusedBatchNorm],
  ['Relu', activation('relu')],
  ['Relu6', activation('relu6')],
  ['LeakyRelu', activation('leakyrelu')],
  ['Sigmoid', activation('sigmoid')],
  ['Tanh', activation('tanh')],
  ['MaxPool', pool('max')],
  ['AvgPool', pool('avg')],
  ['Add', binary(ops.add)],
  ['AddV2', binary(ops.add)],
  ['AddN', addN],
  ['Sub', binary(ops.sub)],
  ['Mul', binary(ops.mul)],
  ['RealDiv', binary(ops.div)],
  ['Div', binary(ops.div)],
  ['Mean', mean],
  ['Sum', sum],
  ['Max', max],
  ['Softmax', softmax(false)],
  ['LogSoftmax', softmax(true)],
  ['Reshape', reshape],
  ['Squeeze', squeeze],
  ['ExpandDims', expandDims],
  ['ConcatV2', concat],
  ['Pad', pad],
  ['PadV2', pad],
  ['ResizeBilinear', resize('bilinear')],
  ['ResizeNearestNeighbor', resize('nearest')],
]);

/** The TF ops that imported graphs may use (besides Placeholder and Const). */
export const SUPPORTED_TFJS_OPS: readonly string[] = Object.freeze(['Placeholder', 'Const', ...TFJS_OPS.keys()].sort());
