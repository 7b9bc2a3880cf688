/**
 * The fuzz suite: thousands of mutated model files and images (test/fuzz/), each of which must end
 * in a model or image, or a SaliencyError: never another error type, a hang, a leak of tensors or
 * a memory spike. The cases of each loader run in a child process (test/fuzz/worker.mjs, on the
 * built library in dist/) whose memory this test watches and caps, and whose every case must finish
 * within a time limit; a failure names the loader, seed and case to rerun it:
 *
 *   node test/fuzz/worker.mjs --target <loader> --seed <seed> --only <case>
 *
 * CI runs the short version (FUZZ_SECONDS, 40 s in all, the same seed every run); `npm run fuzz`
 * runs ten minutes with a new seed each time (FUZZ_SEED to choose one).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TARGETS } from './fuzz/targets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 40);
const SEED = process.env.FUZZ_SEED === 'random' ? (Date.now() % 1e9) : Number(process.env.FUZZ_SEED ?? 1);
/** Resident memory a worker may reach (Dawn, lavapipe and V8 take about 250 MiB before any case). */
const RSS_CAP_MIB = Number(process.env.FUZZ_RSS_CAP_MIB ?? 1024);
/** Longest any one case may take (a graph model built on a busy CPU adapter takes well under a second). */
const CASE_SECONDS = 30;
/** Share of the time per loader: the slower loaders get more, so each sees enough cases. */
const WEIGHT: Record<string, number> = { safetensors: 1, 'tfjs-graph': 2, onnx: 2, png: 1, jpeg: 1 };

interface Report {
  done: number;
  models: number;
  errors: number;
  maxRssMiB: number;
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs one loader's cases in a worker, watching its memory and the time of each case. */
function fuzz(target: string, seconds: number): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=512', 'test/fuzz/worker.mjs', '--target', target, '--seed', String(SEED), '--seconds', String(seconds)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let current = -1;
    let caseStarted = Date.now();
    let peak = 0;
    let stderr = '';
    let buffered = '';
    let report: Report | null = null;
    let failure: string | null = null;
    const stop = (why: string) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    let lastTick = Date.now();
    const watch = setInterval(() => {
      const now = Date.now();
      // This process itself was stalled (a busy machine): the worker's reports are still queued
      // unread, so its time is not the case's; start counting again.
      if (now - lastTick > 1000) caseStarted = now;
      lastTick = now;
      const rss = rssMiB(child.pid!);
      peak = Math.max(peak, rss);
      if (rss > RSS_CAP_MIB) stop(`case ${current} took the worker to ${rss.toFixed(0)} MiB, over the cap of ${RSS_CAP_MIB} MiB`);
      if (Date.now() - caseStarted > CASE_SECONDS * 1000) stop(`case ${current} did not finish within ${CASE_SECONDS} s (a hang?)`);
    }, 25);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line) as { case?: number; fail?: number; error?: string } & Partial<Report>;
        if (event.case !== undefined) {
          current = event.case;
          caseStarted = Date.now();
        } else if (event.fail !== undefined) failure = `case ${event.fail}: ${event.error}`;
        else if (event.done !== undefined) report = event as Report;
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    // 'close', not 'exit': 'exit' can come before the last of stdout (the report) has been read.
    child.on('close', (code) => {
      clearInterval(watch);
      const rerun = `rerun: node test/fuzz/worker.mjs --target ${target} --seed ${SEED} --only ${current}`;
      if (failure) reject(new Error(`${target}: ${failure}\n${rerun}`));
      else if (code !== 0 || !report) reject(new Error(`${target}: the worker exited with ${code} during case ${current}\n${stderr.replace(/^Warning: .*\n/gm, '')}\n${rerun}`));
      else resolve({ ...report, maxRssMiB: Math.max(report.maxRssMiB, Math.round(peak)) });
    });
  });
}

const targets = Object.keys(TARGETS);
const totalWeight = targets.reduce((a, t) => a + (WEIGHT[t] ?? 1), 0);

describe.runIf(existsSync(`${ROOT}dist/nets/model.js`))(`fuzz: every loader, seed ${SEED}`, () => {
  for (const target of targets) {
    const seconds = Math.max(2, Math.round((SECONDS * (WEIGHT[target] ?? 1)) / totalWeight));
    it(`${target}: mutated files give a model or a SaliencyError, within ${RSS_CAP_MIB} MiB and ${CASE_SECONDS} s a case`, { timeout: (seconds + 120) * 1000 }, async () => {
      const r = await fuzz(target, seconds);
      console.log(`fuzz ${target}: ${r.done} cases in ${seconds} s (${r.models} loaded, ${r.errors} SaliencyErrors), peak ${r.maxRssMiB} MiB`);
      expect(r.done).toBeGreaterThanOrEqual(Math.min(20, seconds * 2));
      expect(r.models + r.errors).toBe(r.done);
      expect(r.maxRssMiB).toBeLessThan(RSS_CAP_MIB);
    });
  }
});
