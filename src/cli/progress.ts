/** Progress lines for long runs when stdout is not a terminal (logs, CI): count, rate and ETA. */
import { formatDuration, formatRate, remainingSeconds } from '../runtime/progress.js';

export interface ProgressLinesOptions {
  /** Written before the count, e.g. '  smoothGrad:' or '  drise:'. */
  label: string;
  /** The thing counted, singular and plural: 'mask', 'masks'. */
  unit: string;
  units?: string;
  /** Where lines go (default console.log). */
  log?: (line: string) => void;
  /** Seconds since some origin (default: performance.now() / 1000). */
  clock?: () => number;
  /** A line at least every this many seconds (default 30), besides every tenth of the run. */
  every?: number;
}

/**
 * Returns an onProgress(done, total) callback that prints "<label> 480/5000 masks (9%), 44 masks/s,
 * ETA 1m 43s" at every tenth of the run, at least every `every` seconds, and at the end.
 */
export function progressLines(o: ProgressLinesOptions): (done: number, total: number) => void {
  const log = o.log ?? ((line: string) => console.log(line));
  const clock = o.clock ?? (() => performance.now() / 1000);
  const every = o.every ?? 30;
  const units = o.units ?? `${o.unit}s`;
  const start = clock();
  let lastDone = 0;
  let lastTime = start;
  return (done, total) => {
    const t = clock();
    const step = total / 10;
    if (done !== total && done - lastDone < step && t - lastTime < every) return;
    lastDone = done;
    lastTime = t;
    const elapsed = t - start;
    const rate = formatRate(done, elapsed, o.unit, o.units);
    const tail = done === total ? `in ${formatDuration(elapsed)}` : `ETA ${formatDuration(remainingSeconds(done, total, elapsed))}`;
    log(`${o.label} ${done}/${total} ${total === 1 ? o.unit : units} (${Math.floor((100 * done) / total)}%), ${rate}, ${tail}`);
  };
}
