/** TF.js convolutions: Conv2D, _FusedConv2D, DepthwiseConv2dNative, FusedDepthwiseConv2dNative. */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { FormatError, ShapeError, formatShape } from '../../../runtime/errors.js';
import type { DeviceConstant, StepRun } from '../../graph/executor.js';
import { permuteHost } from '../../graph/host.js';
import { checkNhwc, constInput, convOut, fusedOps, positive, runtimeInput, spatialPadding, type TfjsOpBuilder } from './context.js';

/**
 * Filters in our layout [out, in/groups, kh, kw]: [kh, kw, in, out] → [out, in, kh, kw]; depthwise
 * [kh, kw, C, m] → a grouped conv [C·m, 1, kh, kw] with groups = C (output channel k·m + j reads input k).
 */
export function conv(depthwise: boolean, fused: boolean): TfjsOpBuilder {
  return (c) => {
    checkNhwc(c);
    const x = runtimeInput(c, 0, 4);
    const f = constInput(c, 1, 'filter');
    if (f.shape.length !== 4) throw new ShapeError(`${c.where}: the filter must be [kh, kw, in, out], got ${formatShape(f.shape)}`);
    const [kh, kw, cin, m] = f.shape as [number, number, number, number];
    if (x[3] !== -1 && x[3] !== cin) throw new ShapeError(`${c.where}: the input has ${x[3]} channels, the filter ${formatShape(f.shape)} expects ${cin}`);
    const st = positive(c, 'strides', c.attrs.ints('strides', [1, 1, 1, 1]), 4);
    const dl = positive(c, 'dilations', c.attrs.ints('dilations', [1, 1, 1, 1]), 4);
    if (st[0] !== 1 || st[3] !== 1 || dl[0] !== 1 || dl[3] !== 1) throw new FormatError(`${c.where}: strides/dilations over N or C are not supported`);
    const stride: [number, number] = [st[1]!, st[2]!];
    const dilation: [number, number] = [dl[1]!, dl[2]!];
    const { bias, activation, alpha } = fused ? fusedOps(c) : { bias: false, activation: 'none' as Activation, alpha: 0.2 };
    const cout = depthwise ? cin * m : m;
    const weight = depthwise ? c.upload(permuteHost(f, [2, 3, 0, 1]), [cout, 1, kh, kw]) : c.upload(permuteHost(f, [3, 2, 0, 1]));
    let b: DeviceConstant | null = null;
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
    const params: Record<string, DeviceConstant> = { weight };
    if (b) params.bias = b;
    const padAttr = c.attrs.str('padding');
    const run = (act: Activation, a: number): StepRun => (args, w) =>
      ops.conv2d(args[0]!, w(weight), w(b), { stride, dilation, groups, padding: pads(args[0]!.shape[2]!, args[0]!.shape[3]!), activation: act, alpha: a });
    return {
      shape,
      type: 'conv2d',
      spec: { in: cin, out: cout, kernel: [kh, kw], stride, dilation, groups, padding: padAttr === 'SAME' ? 'same' : padAttr === 'VALID' ? 'valid' : p, bias, activation },
      params,
      run: run(activation, alpha),
      ...(activation === 'none' ? { fused: run } : {}),
    };
  };
}
