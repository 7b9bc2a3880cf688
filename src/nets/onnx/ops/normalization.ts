/**
 * ONNX BatchNormalization in inference (training_mode 0): y = scale·(x − mean)/√(var + ε) + B,
 * folded at load time into one multiply and one add per channel.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { OpResult } from '../../graph/executor.js';
import { using } from '../../graph/ops.js';
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
  const s = new Float32Array(ch);
  const t = new Float32Array(ch);
  for (let k = 0; k < ch; k++) {
    const v = variance!.data[k]! + eps;
    if (!(v > 0)) throw new FormatError(`${c.where}: channel ${k} has variance ${variance!.data[k]} and ε ${eps}: the variance must be positive`);
    s[k] = scale!.data[k]! / Math.sqrt(v);
    t[k] = bias!.data[k]! - mean!.data[k]! * s[k]!;
  }
  const shape = [1, ch, ...x.slice(2).map(() => 1)];
  const st = c.upload({ dtype: 'float32', shape, data: s });
  const tt = c.upload({ dtype: 'float32', shape, data: t });
  return { shape: x, type: 'batchnorm', params: { _scale: st, _shift: tt }, run: async ([v]) => using(await ops.mul(v!, st), (m) => ops.add(m, tt)) };
}
