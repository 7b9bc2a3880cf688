/**
 * `--shard i/N` (the i-th of N shards, counted from 0), `--shard auto` (i from the
 * JOB_COMPLETION_INDEX a Kubernetes Indexed Job gives each pod, N from SALIENCY_SHARD_COUNT), and
 * `--shard auto/N`. Which shard an image is in depends on its id alone (see `shardOf`).
 */
import { ArgumentError } from '../../runtime/errors.js';
import { decimal } from '../parse.js';

export interface Shard {
  index: number;
  count: number;
}

/** Shard counts above this are surely a mistake (a shard per image would still be fine below). */
export const MAX_SHARDS = 1_000_000;

function whole(text: string | undefined, what: string): number {
  const n = text === undefined ? NaN : decimal(text);
  if (!Number.isSafeInteger(n) || n < 0 || !/^\s*\d+\s*$/.test(text ?? '')) throw new ArgumentError(`${what} must be a whole number, got ${text === undefined ? 'nothing' : `'${text}'`}`);
  return n;
}

/** The shard asked for, or null for the whole input. */
export function parseShard(text: string | undefined, env: NodeJS.ProcessEnv): Shard | null {
  if (text === undefined) return null;
  const t = text.trim();
  let index: number;
  let count: number;
  if (t === 'auto' || t.startsWith('auto/')) {
    if (env.JOB_COMPLETION_INDEX === undefined) {
      throw new ArgumentError('--shard auto reads the shard from JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets; it is not set here (use --shard i/N)');
    }
    index = whole(env.JOB_COMPLETION_INDEX, 'JOB_COMPLETION_INDEX');
    if (t === 'auto') {
      if (env.SALIENCY_SHARD_COUNT === undefined) throw new ArgumentError('--shard auto needs the shard count: set SALIENCY_SHARD_COUNT (the Job\'s completions) or write --shard auto/N');
      count = whole(env.SALIENCY_SHARD_COUNT, 'SALIENCY_SHARD_COUNT');
    } else count = whole(t.slice(5), '--shard auto/N: N');
  } else {
    const m = /^(\d+)\/(\d+)$/.exec(t);
    if (!m) throw new ArgumentError(`--shard must be i/N (e.g. 0/4), auto or auto/N, got '${text}'`);
    index = whole(m[1], '--shard i');
    count = whole(m[2], '--shard N');
  }
  if (count < 1 || count > MAX_SHARDS) throw new ArgumentError(`the shard count must be between 1 and ${MAX_SHARDS}, got ${count}`);
  if (index >= count) throw new ArgumentError(`shard ${index} does not exist: shards are numbered 0..${count - 1}`);
  return { index, count };
}
