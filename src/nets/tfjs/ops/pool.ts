/** TF.js pooling: MaxPool and AvgPool (SAME, VALID, EXPLICIT padding). */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError, ShapeError } from '../../../runtime/errors.js';
import { checkNhwc, convOut, positive, runtimeInput, spatialPadding, type TfjsOpBuilder } from './context.js';

export function pool(kind: 'max' | 'avg'): TfjsOpBuilder {
  return (c) => {
    checkNhwc(c);
    const x = runtimeInput(c, 0, 4);
    const k = positive(c, 'ksize', c.attrs.ints('ksize'), 4);
    const s = positive(c, 'strides', c.attrs.ints('strides'), 4);
    if (k[0] !== 1 || k[3] !== 1 || s[0] !== 1 || s[3] !== 1) throw new FormatError(`${c.where}: pooling over N or C is not supported`);
    const kernel: [number, number] = [k[1]!, k[2]!];
    const stride: [number, number] = [s[1]!, s[2]!];
    const pads = (h: number, w: number) => spatialPadding(c, [h, w], kernel, stride, [1, 1]);
    const p = pads(x[1]!, x[2]!);
    const shape = [x[0]!, convOut(x[1]!, kernel[0], stride[0], 1, p[0], p[1]), convOut(x[2]!, kernel[1], stride[1], 1, p[2], p[3]), x[3]!];
    if (shape[1]! <= 0 || shape[2]! <= 0) throw new ShapeError(`${c.where}: the ${kernel.join('×')} window does not fit the ${x[1]}×${x[2]} input`);
    return {
      shape,
      type: kind === 'max' ? 'maxpool2d' : 'avgpool2d',
      spec: { kernel, stride },
      run: ([t]) => {
        const padding = pads(t!.shape[2]!, t!.shape[3]!);
        // TF never counts padding in an average, and padding never wins a max.
        return kind === 'max' ? ops.maxPool2d(t!, { kernel, stride, padding }) : ops.avgPool2d(t!, { kernel, stride, padding, countIncludePad: false });
      },
    };
  };
}
