/**
 * ONNX BatchNormalization in inference (training_mode 0): y = scale·(x − mean)/√(var + ε) + B,
 * the differentiable batchNorm op (one dispatch each way).
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { OpResult } from '../../graph/executor.js';
import { constInput, runtimeInput, type OnnxContext } from './context.js';

export function batchNormalization(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0);
  if (x.length < 2) throw new FormatError(`${c.where}: the input needs a channel axis`);
  if (c.attrs.int('training_mode', 0) !== 0) throw new FormatError(`${c.where}: training_mode = 1 is not supported (inference only)`);
  if (c.node.output && c.node.output.filter((o) => o).length > 1 && c.opset < 9) throw new FormatError(`${c.where}: the training outputs (mean, var) are not supported`);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => constInput(c, i, ['scale', 'B', 'mean', 'var'][i - 1]!));
  const eps = c.attrs.float('epsilon', 1e-5);
  const ch = x[1]!;
  for (const [name, h] of [['scale', scale], ['B', bias], ['mean', mean], ['var', variance]] as const) {
    if (h!.data.length !== ch) throw new FormatError(`${c.where}: ${name} has ${h!.data.length} values for ${ch} channels`);
  }
  for (let k = 0; k < ch; k++) {
    if (!(variance!.data[k]! + eps > 0)) throw new FormatError(`${c.where}: channel ${k} has variance ${variance!.data[k]} and ε ${eps}: the variance must be positive`);
  }
  const [st, bt, mt, vt] = [scale, bias, mean, variance].map((h) => c.upload(h!, [ch]));
  return {
    shape: x,
    type: 'batchnorm',
    params: { weight: st!, bias: bt!, running_mean: mt!, running_var: vt! },
    run: ([v], w) => ops.batchNorm(v!, { scale: w(st!), bias: w(bt!), mean: w(mt!), variance: w(vt!), epsilon: eps }),
  };
}
