/** Helpers the op builders of every graph format share. */
import type { Tensor } from '../../runtime/tensor.js';

/** Runs f on a temporary and disposes it. */
export async function using<T>(t: Tensor, f: (t: Tensor) => Promise<T>): Promise<T> {
  try {
    return await f(t);
  } finally {
    t.dispose();
  }
}
