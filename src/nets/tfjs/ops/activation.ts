/** TF.js activations (Relu, Relu6, LeakyRelu, Sigmoid, Tanh) and Softmax, LogSoftmax. */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { ourAxis } from '../layout.js';
import { runtimeInput, type TfjsOpBuilder } from './context.js';

export function activation(act: Exclude<Activation, 'none'>): TfjsOpBuilder {
  return (c) => {
    const shape = runtimeInput(c, 0);
    const alpha = c.attrs.float('alpha', 0.2);
    return { shape, type: act, run: ([x]) => ops.activation(x!, act, alpha), activation: { act, alpha } };
  };
}

export function softmax(log: boolean): TfjsOpBuilder {
  return (c) => {
    const x = runtimeInput(c, 0);
    const axis = ourAxis(x.length - 1, x.length);
    return { shape: x, type: log ? 'logsoftmax' : 'softmax', run: ([t]) => (log ? ops.logSoftmax(t!, axis) : ops.softmax(t!, axis)) };
  };
}
