/**
 * ONNX Conv (1-D and 2-D: groups, dilations, strides, pads, auto_pad SAME_UPPER / SAME_LOWER /
 * VALID) on our conv2d, whose backward gives the input gradient and applies the tape's activation
 * rules when a Relu is fused into it. A 1-D convolution runs as a 2-D one of height 1.
 */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { FormatError, formatShape } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import type { DeviceConstant, OpResult, StepRun } from '../../graph/executor.js';
import { constInput, optionalConst, runtimeInput, type OnnxContext } from './context.js';

/** Geometry of a 1-D or 2-D window op, as 2-D: [h, w] pairs, padding [top, bottom, left, right]. */
export interface Window2d {
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  padding: [number, number, number, number];
  /** The output's spatial size. */
  out: [number, number];
}

/** Reads kernel_shape (or `kernel`), strides, dilations, pads and auto_pad for a spatial input of `size` (1 or 2 axes). */
export function window(c: OnnxContext, size: number[], kernel: number[], o: { ceil?: boolean } = {}): Window2d {
  const r = size.length;
  const list = (name: string, fallback: number) => {
    const v = c.attrs.ints(name, new Array<number>(r).fill(fallback));
    if (v.length !== r || v.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new FormatError(`${c.where}: ${name} ${JSON.stringify(v)} must be ${r} positive integers`);
    return v;
  };
  const strides = list('strides', 1);
  const dilations = list('dilations', 1);
  const autoPad = c.attrs.string('auto_pad', 'NOTSET');
  let begin: number[];
  let end: number[];
  if (autoPad === 'NOTSET') {
    const pads = c.attrs.ints('pads', new Array<number>(2 * r).fill(0));
    if (pads.length !== 2 * r || pads.some((p) => !Number.isSafeInteger(p) || p < 0)) throw new FormatError(`${c.where}: pads ${JSON.stringify(pads)} must be ${2 * r} non-negative integers`);
    begin = pads.slice(0, r);
    end = pads.slice(r);
  } else if (autoPad === 'VALID') {
    begin = new Array<number>(r).fill(0);
    end = new Array<number>(r).fill(0);
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = size.map((n, i) => Math.max(0, (Math.ceil(n / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - n));
    begin = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    end = total.map((t, i) => t - begin[i]!);
  } else throw new FormatError(`${c.where}: auto_pad '${autoPad}' is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER)`);
  const out = size.map((n, i) => {
    const span = n + begin[i]! + end[i]! - ((kernel[i]! - 1) * dilations[i]! + 1);
    let v = (o.ceil ? Math.ceil(span / strides[i]!) : Math.floor(span / strides[i]!)) + 1;
    if (o.ceil && (v - 1) * strides[i]! >= n + begin[i]!) v--; // a last window starting in the end padding is dropped
    return v;
  });
  if (out.some((v) => !(v >= 1))) throw new FormatError(`${c.where}: the ${kernel.join('×')} window does not fit the ${size.join('×')} input with pads ${JSON.stringify([...begin, ...end])}`);
  const two = <T>(v: T[], one: T): [T, T] => (r === 1 ? [one, v[0]!] : [v[0]!, v[1]!]);
  return {
    kernel: two(kernel, 1),
    stride: two(strides, 1),
    dilation: two(dilations, 1),
    padding: r === 1 ? [0, 0, begin[0]!, end[0]!] : [begin[0]!, end[0]!, begin[1]!, end[1]!],
    out: two(out, 1),
  };
}

/** x viewed as 2-D (height 1 for a 1-D op), f applied, the result viewed back. */
export async function as2d(x: Tensor, f: (t: Tensor) => Promise<Tensor>): Promise<Tensor> {
  if (x.rank === 4) return f(x);
  const v = x.reshape([x.shape[0]!, x.shape[1]!, 1, x.shape[2]!]);
  let y: Tensor;
  try {
    y = await f(v);
  } finally {
    v.dispose();
  }
  try {
    return y.reshape([y.shape[0]!, y.shape[1]!, y.shape[3]!]);
  } finally {
    y.dispose();
  }
}

export function conv(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0, [3, 4]);
  const w = constInput(c, 1, 'weight');
  const r = x.length - 2;
  if (w.shape.length !== r + 2) throw new FormatError(`${c.where}: the weight ${formatShape(w.shape)} does not match the ${r}-D input ${formatShape(x)}`);
  const group = c.attrs.int('group', 1);
  const [m, cg] = w.shape as [number, number];
  if (group < 1 || x[1] !== cg * group || m % group !== 0) {
    throw new FormatError(`${c.where}: the input has ${x[1]} channels; the weight ${formatShape(w.shape)} with group ${group} expects ${cg * group}`);
  }
  const kernel = w.shape.slice(2);
  const declared = c.attrs.ints('kernel_shape', kernel);
  if (declared.join() !== kernel.join()) throw new FormatError(`${c.where}: kernel_shape ${JSON.stringify(declared)} differs from the weight's ${formatShape(kernel)}`);
  const g = window(c, x.slice(2), kernel);
  const weight = c.upload(w, [m, cg, ...g.kernel]);
  const b = optionalConst(c, 2, 'bias');
  if (b && b.data.length !== m) throw new FormatError(`${c.where}: the bias has ${b.data.length} values for ${m} output channels`);
  const bias = b ? c.upload(b, [m]) : null;
  const run = (activation: Activation, alpha: number): StepRun => (args, w) =>
    as2d(args[0]!, (t) => ops.conv2d(t, w(weight), w(bias), { stride: g.stride, dilation: g.dilation, groups: group, padding: g.padding, activation, alpha }));
  const params: Record<string, DeviceConstant> = { weight };
  if (bias) params.bias = bias;
  return {
    shape: [x[0]!, m, ...(r === 1 ? [g.out[1]] : g.out)],
    type: 'conv2d',
    spec: { in: x[1], out: m, kernel: g.kernel, stride: g.stride, dilation: g.dilation, groups: group, padding: g.padding, bias: !!bias },
    params,
    run: run('none', 0.01),
    fused: run,
  };
}

