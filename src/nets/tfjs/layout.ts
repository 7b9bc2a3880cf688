/**
 * Layout translation of TF graphs: TF graphs are NHWC; we keep every rank-4 value NCHW (our
 * kernels' layout) and translate once, at load time (filters, axis attributes, rank-4 constants).
 * A Reshape or Squeeze of a rank-4 value first puts it back in NHWC order, because TF flattens
 * H, W, C.
 */
import * as ops from '../../autodiff/ops/index.js';
import type { Tensor } from '../../runtime/tensor.js';
import { broadcastShapes, padRank, permuteHost, type HostTensor } from '../graph/host.js';
import { using } from '../graph/ops.js';

/** Our shape of a TF shape: rank-4 NHWC → NCHW. */
export function ours(shape: readonly number[]): number[] {
  return shape.length === 4 ? [shape[0]!, shape[3]!, shape[1]!, shape[2]!] : [...shape];
}

/** Our axis of TF axis `a` of a value of rank `rank`. */
export function ourAxis(a: number, rank: number): number {
  const axis = a < 0 ? a + rank : a;
  return rank === 4 ? [0, 2, 3, 1][axis]! : axis;
}

/** A constant in our layout for a value of rank `rank` (padded with leading 1s first, as TF broadcasts). */
export function hostInLayout(h: HostTensor, rank: number): HostTensor {
  const padded = padRank(h, rank);
  return rank === 4 ? permuteHost(padded, [0, 3, 1, 2]) : padded;
}

/** A rank-4 NCHW tensor in NHWC order (a view when that moves only singleton axes). */
export async function toTfOrder(t: Tensor): Promise<Tensor> {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  return c === 1 || h * w === 1 ? t.reshape([n, h, w, c]) : ops.transpose(t, [0, 2, 3, 1]);
}

/** A rank-4 NHWC tensor in our NCHW order. */
export async function fromTfOrder(t: Tensor): Promise<Tensor> {
  const [n, h, w, c] = t.shape as [number, number, number, number];
  return c === 1 || h * w === 1 ? t.reshape([n, c, h, w]) : ops.transpose(t, [0, 3, 1, 2]);
}

/** Runs `f` on x in TF's order (NHWC for rank 4) and brings a rank-4 result back to NCHW. */
export async function inTfOrder(x: Tensor, tfRank: number, f: (t: Tensor) => Tensor | Promise<Tensor>): Promise<Tensor> {
  const t = tfRank === 4 ? await toTfOrder(x) : x;
  let y: Tensor;
  try {
    y = await f(t);
  } finally {
    if (t !== x) t.dispose();
  }
  return y.rank === 4 ? using(y, fromTfOrder) : y;
}

/** TF broadcasting of static shapes (−1: the batch, unknown). */
export const broadcastTf = broadcastShapes;
