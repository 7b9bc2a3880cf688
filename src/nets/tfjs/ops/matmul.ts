/** TF.js matrix products: MatMul and _FusedMatMul (a constant weight runs as our `linear`). */
import * as ops from '../../../autodiff/ops/index.js';
import type { Activation } from '../../../kernels/common.js';
import { FormatError, ShapeError, formatShape } from '../../../runtime/errors.js';
import type { DeviceConstant, StepRun } from '../../graph/executor.js';
import { permuteHost } from '../../graph/host.js';
import { using } from '../../graph/ops.js';
import { constInput, fusedOps, runtimeInput, type TfjsOpBuilder } from './context.js';

export function matmul(fused: boolean): TfjsOpBuilder {
  return (c) => {
    const a = runtimeInput(c, 0, 2);
    if (c.attrs.bool('transpose_a', false)) throw new FormatError(`${c.where}: transpose_a is not supported`);
    const transB = c.attrs.bool('transpose_b', false);
    const { bias, activation, alpha } = fused ? fusedOps(c) : { bias: false, activation: 'none' as Activation, alpha: 0.2 };
    const bv = c.inputs[1];
    let biasT: DeviceConstant | null = null;
    if (bv?.kind === 'const') {
      const bh = bv.host;
      if (bh.shape.length !== 2) throw new ShapeError(`${c.where}: the weight must be a matrix, got ${formatShape(bh.shape)}`);
      // linear takes [out, in]: TF's [in, out] transposed (or as given with transpose_b).
      const weight = c.upload(transB ? bh : permuteHost(bh, [1, 0]));
      const [out, inF] = weight.shape as [number, number];
      if (a[1] !== inF) throw new ShapeError(`${c.where}: input ${formatShape(a)} does not match the weight ${formatShape(bh.shape)}${transB ? ' (transposed)' : ''}`);
      if (bias) {
        const h = constInput(c, 2, 'bias');
        if (h.data.length !== out) throw new ShapeError(`${c.where}: the bias has ${h.data.length} values for ${out} outputs`);
        biasT = c.upload(h, [out]);
      }
      const params: Record<string, DeviceConstant> = { weight };
      if (biasT) params.bias = biasT;
      const run = (act: Activation, al: number): StepRun => (args, w) => ops.linear(args[0]!, w(weight), w(biasT), { activation: act, alpha: al });
      return {
        shape: [a[0]!, out],
        type: 'linear',
        spec: { in: inF, out, bias, activation },
        params,
        run: run(activation, alpha),
        ...(activation === 'none' ? { fused: run } : {}),
      };
    }
    const b = runtimeInput(c, 1, 2);
    if (bias) biasT = c.upload(constInput(c, 2, 'bias'));
    const out = transB ? b[0]! : b[1]!;
    return {
      shape: [a[0]!, out],
      type: 'matmul',
      run: async ([x, y], w) => {
        let r = transB ? await using(await ops.transpose(y!, [1, 0]), (yt) => ops.matmul(x!, yt)) : await ops.matmul(x!, y!);
        if (biasT) r = await using(r, (t) => ops.add(t, w(biasT!)));
        if (activation !== 'none') r = await using(r, (t) => ops.activation(t, activation, alpha));
        return r;
      },
    };
  };
}
