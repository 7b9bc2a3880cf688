/** TF.js reductions: Mean, Sum, Max over constant axes (Mean over H and W is global average pooling). */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import type { Tensor } from '../../../runtime/tensor.js';
import { using } from '../../graph/ops.js';
import { ourAxis } from '../layout.js';
import { constInput, runtimeInput, type TfjsContext, type TfjsOpBuilder } from './context.js';

function axesOf(c: TfjsContext, i: number, rank: number): number[] {
  const a = [...constInput(c, i, 'axes').data].map((v) => (v < 0 ? v + rank : v));
  if (a.some((v) => !Number.isInteger(v) || v < 0 || v >= rank)) throw new FormatError(`${c.where}: axes ${JSON.stringify(a)} out of range for rank ${rank}`);
  return [...new Set(a)].sort((p, q) => p - q);
}

export function reduction(fn: (x: Tensor, axes: number[], keep: boolean) => Promise<Tensor>, kind: string): TfjsOpBuilder {
  return (c) => {
    const x = runtimeInput(c, 0);
    const rank = x.length;
    const axes = axesOf(c, 1, rank);
    const keep = c.attrs.bool('keep_dims', false);
    const shape = keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i));
    const ourAxes = axes.map((a) => ourAxis(a, rank)).sort((p, q) => p - q);
    // Without keep_dims our remaining axes must come out in TF's order.
    const remaining = [0, 1, 2, 3].slice(0, rank).filter((i) => !ourAxes.includes(i));
    const tfOfOurs = remaining.map((i) => (rank === 4 ? [0, 3, 1, 2][i]! : i));
    const sorted = [...tfOfOurs].sort((p, q) => p - q);
    const perm = !keep && rank === 4 && tfOfOurs.some((v, i) => v !== sorted[i]) ? sorted.map((v) => tfOfOurs.indexOf(v)) : null;
    const gap = kind === 'mean' && rank === 4 && axes.join() === '1,2' && !keep;
    return {
      shape,
      type: gap ? 'gap' : kind,
      run: async ([t]) => {
        const y = await fn(t!, ourAxes, keep);
        return perm ? using(y, (v) => ops.transpose(v, perm)) : y;
      },
    };
  };
}

export const mean = reduction(ops.mean, 'mean');
export const sum = reduction(ops.sum, 'sum');
export const max = reduction(ops.max, 'max');
