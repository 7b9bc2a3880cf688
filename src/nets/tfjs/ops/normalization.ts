/** TF.js FusedBatchNorm / FusedBatchNormV3 in inference: one scale and one shift per channel, folded at load time. */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError, ShapeError } from '../../../runtime/errors.js';
import type { Prepared } from '../../graph/executor.js';
import { using } from '../../graph/ops.js';
import { hostInLayout } from '../layout.js';
import { checkNhwc, constInput, runtimeInput, type TfjsContext } from './context.js';

export function fusedBatchNorm(c: TfjsContext): Prepared {
  checkNhwc(c);
  if (c.attrs.bool('is_training', false)) throw new FormatError(`${c.where}: is_training = true is not supported`);
  const x = runtimeInput(c, 0);
  const [scale, offset, mean, variance] = [1, 2, 3, 4].map((i) => constInput(c, i, ['scale', 'offset', 'mean', 'variance'][i - 1]!));
  const eps = c.attrs.float('epsilon', 1e-3);
  const n = scale!.data.length;
  if ([offset, mean, variance].some((h) => h!.data.length !== n)) throw new ShapeError(`${c.where}: scale, offset, mean and variance must have the same length`);
  const s = new Float32Array(n);
  const t = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    if (!(variance!.data[k]! >= 0)) throw new FormatError(`${c.where}: variance[${k}] is ${variance!.data[k]}; a variance must be ≥ 0 (the scale 1/√(var + eps) would be NaN)`);
    s[k] = scale!.data[k]! / Math.sqrt(variance!.data[k]! + eps);
    t[k] = offset!.data[k]! - mean!.data[k]! * s[k]!;
  }
  const [st, tt] = [s, t].map((d) => c.upload(hostInLayout({ dtype: 'float32', shape: [n], data: d }, x.length)));
  return { shape: x, type: 'batchnorm', run: async ([v], w) => using(await ops.mul(v!, w(st!)), (m) => ops.add(m, w(tt!))) };
}
