/**
 * ONNX ConvTranspose (1-D and 2-D: groups, strides, dilations, pads, output_padding, output_shape,
 * auto_pad) on the differentiable convTranspose2d op. The pads follow ONNX Runtime: with
 * output_shape or SAME_*, the total padding is split (SAME_UPPER puts the larger half at the end,
 * SAME_LOWER at the start) and a target beyond the full output adds output padding.
 */
import * as ops from '../../../autodiff/ops/index.js';
import type { ConvTranspose2dParams } from '../../../kernels/conv-transpose.js';
import { FormatError, formatShape } from '../../../runtime/errors.js';
import type { DeviceConstant, OpResult } from '../../graph/executor.js';
import { as2d } from './conv.js';
import { constInput, optionalConst, runtimeInput, type OnnxContext } from './context.js';

export function convTranspose(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0, [3, 4]);
  const wh = constInput(c, 1, 'weight');
  const r = x.length - 2;
  if (wh.shape.length !== r + 2) throw new FormatError(`${c.where}: the weight ${formatShape(wh.shape)} does not match the ${r}-D input ${formatShape(x)}`);
  const group = c.attrs.int('group', 1);
  const [cin, coutG] = wh.shape as [number, number];
  if (group < 1 || x[1] !== cin || cin % group !== 0) throw new FormatError(`${c.where}: the input has ${x[1]} channels; the weight ${formatShape(wh.shape)} expects ${cin}`);
  const cout = coutG * group;
  const kernel = wh.shape.slice(2);
  const list = (name: string, fallback: number, min: number) => {
    const v = c.attrs.ints(name, new Array<number>(r).fill(fallback));
    if (v.length !== r || v.some((q) => !Number.isSafeInteger(q) || q < min)) throw new FormatError(`${c.where}: ${name} ${JSON.stringify(v)} must be ${r} integers ≥ ${min}`);
    return v;
  };
  const strides = list('strides', 1, 1);
  const dilations = list('dilations', 1, 1);
  const outputPadding = list('output_padding', 0, 0);
  const span = kernel.map((k, i) => (k - 1) * dilations[i]! + 1);
  const size = x.slice(2);
  let begin: number[];
  let end: number[];
  const given = c.attrs.has('output_shape') ? c.attrs.ints('output_shape').slice(-r) : null;
  const autoPad = c.attrs.string('auto_pad', 'NOTSET');
  if (given || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const target = given ?? size.map((n, i) => n * strides[i]!);
    const total = target.map((t, i) => strides[i]! * (size[i]! - 1) + outputPadding[i]! + span[i]! - t);
    // A target beyond the full output: the extra rows at the end, as output padding.
    total.forEach((t, i) => {
      if (t < 0) outputPadding[i] = outputPadding[i]! - t;
    });
    for (let i = 0; i < r; i++) total[i] = Math.max(0, total[i]!);
    begin = total.map((t) => (autoPad === 'SAME_LOWER' ? t - Math.floor(t / 2) : Math.floor(t / 2)));
    end = total.map((t, i) => t - begin[i]!);
  } else if (autoPad === 'NOTSET' || autoPad === 'VALID') {
    const pads = autoPad === 'VALID' ? new Array<number>(2 * r).fill(0) : c.attrs.ints('pads', new Array<number>(2 * r).fill(0));
    if (pads.length !== 2 * r || pads.some((p) => p < 0)) throw new FormatError(`${c.where}: pads ${JSON.stringify(pads)} must be ${2 * r} non-negative integers`);
    begin = pads.slice(0, r);
    end = pads.slice(r);
  } else throw new FormatError(`${c.where}: auto_pad '${autoPad}' is not supported`);
  if (outputPadding.some((p, i) => p >= strides[i]! && p >= dilations[i]!)) throw new FormatError(`${c.where}: output_padding ${JSON.stringify(outputPadding)} must be smaller than the stride or the dilation`);
  if (outputPadding.some((p, i) => p >= strides[i]!)) throw new FormatError(`${c.where}: output_padding ≥ stride is not supported`);
  const out = size.map((n, i) => strides[i]! * (n - 1) + outputPadding[i]! + span[i]! - begin[i]! - end[i]!);
  if (out.some((o) => o < 1)) throw new FormatError(`${c.where}: the output would be empty (${out.join('×')})`);
  const two = (v: number[], one: number): [number, number] => (r === 1 ? [one, v[0]!] : [v[0]!, v[1]!]);
  const params: ConvTranspose2dParams = {
    stride: two(strides, 1),
    dilation: two(dilations, 1),
    groups: group,
    padding: r === 1 ? [0, 0, begin[0]!, end[0]!] : [begin[0]!, end[0]!, begin[1]!, end[1]!],
    outputPadding: two(outputPadding, 0),
  };
  const weight = c.upload(wh, [cin, coutG, ...two(kernel, 1)]);
  const b = optionalConst(c, 2, 'bias');
  if (b && b.data.length !== cout) throw new FormatError(`${c.where}: the bias has ${b.data.length} values for ${cout} output channels`);
  const bias = b ? c.upload(b, [cout]) : null;
  const params2: Record<string, DeviceConstant> = { weight };
  if (bias) params2.bias = bias;
  return {
    shape: [x[0]!, cout, ...out],
    type: 'convtranspose',
    spec: { in: cin, out: cout, kernel: two(kernel, 1), ...params },
    params: params2,
    run: ([t], w) => as2d(t!, (v) => ops.convTranspose2d(v, w(weight), w(bias), params)),
  };
}
