/**
 * Progress in words: durations ("3m 05s") and rates that mean something at any speed ("44
 * masks/s", "42 masks/min" or "85 s/mask" below one a minute), for the progress lines of long runs.
 */

/** A duration for people: "0.4 s", "42 s", "3m 05s", "1h 02m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/**
 * `count` things done in `seconds`, as a rate: per second from one a second up, per minute below
 * that, and seconds per thing below one a minute. `unit` is the singular, `units` the plural.
 */
export function formatRate(count: number, seconds: number, unit: string, units = `${unit}s`): string {
  if (!(count > 0) || !(seconds > 0)) return `0 ${units}/s`;
  const perSecond = count / seconds;
  const figure = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
  if (perSecond >= 1) return `${figure(perSecond)} ${units}/s`;
  if (perSecond * 60 >= 1) return `${figure(perSecond * 60)} ${units}/min`;
  return `${figure(1 / perSecond)} s/${unit}`;
}

/** Seconds left at the rate so far, after `done` of `total` took `elapsed` seconds. */
export function remainingSeconds(done: number, total: number, elapsed: number): number {
  return done > 0 ? (elapsed / done) * (total - done) : NaN;
}
