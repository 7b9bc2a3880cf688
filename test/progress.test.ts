/** Progress in words: durations, rates at any speed, and the progress lines of long runs. */
import { describe, expect, it } from 'vitest';
import { formatDuration, formatRate, remainingSeconds } from '../src/runtime/progress.js';
import { progressLines } from '../src/cli/progress.js';

describe('progress', () => {
  it('durations', () => {
    expect(formatDuration(0.42)).toBe('0.4 s');
    expect(formatDuration(42.4)).toBe('42 s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(3725)).toBe('1h 02m');
    expect(formatDuration(NaN)).toBe('?');
  });

  it('rates mean something below one per second', () => {
    expect(formatRate(5000, 113.2, 'mask')).toBe('44 masks/s');
    expect(formatRate(5, 2, 'mask')).toBe('2.5 masks/s');
    // CenterNet on lavapipe: 24 masks in 34 s is 0.7 masks/s, which used to print as "0 masks/s".
    expect(formatRate(24, 34, 'mask')).toBe('42 masks/min');
    expect(formatRate(1, 85, 'mask')).toBe('85 s/mask');
    expect(formatRate(3, 20, 'sample')).toBe('9.0 samples/min');
    expect(formatRate(0, 1, 'mask')).toBe('0 masks/s');
    expect(remainingSeconds(10, 40, 5)).toBe(15);
  });

  it('lines at every tenth, at least every 30 s, and at the end, with an ETA', () => {
    const lines: string[] = [];
    let t = 0;
    const report = progressLines({ label: '  drise:', unit: 'mask', log: (l) => lines.push(l), clock: () => t });
    for (let done = 4; done <= 40; done += 4) {
      t += 2; // 2 masks/s
      report(done, 40);
    }
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('  drise: 4/40 masks (10%), 2.0 masks/s, ETA 18 s');
    expect(lines[9]).toBe('  drise: 40/40 masks (100%), 2.0 masks/s, in 20 s');
    // Slow: one mask in 40 s still gives a line (at least every 30 s), and a rate per minute.
    const slow: string[] = [];
    t = 0;
    const slowReport = progressLines({ label: '  drise:', unit: 'mask', log: (l) => slow.push(l), clock: () => t });
    t = 40;
    slowReport(1, 100);
    expect(slow).toEqual(['  drise: 1/100 masks (1%), 1.5 masks/min, ETA 1h 06m']);
  });
});
