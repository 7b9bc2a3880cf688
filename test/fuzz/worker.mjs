#!/usr/bin/env node
/**
 * Runs fuzz cases of one target (targets.mjs) in this process and reports each on stdout, one JSON
 * line per event, so that the parent (test/fuzz.test.ts) can watch this process's memory and time
 * and name the case that went wrong:
 *   {"case": i}                          before case i
 *   {"fail": i, "seed": s, "error": …}   case i ended in something other than a model or a
 *                                        SaliencyError, or left tensors behind (then exit 1)
 *   {"done": n, "models": …, "errors": …, "maxRssMiB": …}
 *
 *   node test/fuzz/worker.mjs --target png --seed 1 --seconds 10 --cases 5000 [--only 17]
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rng } from './mutate.mjs';
import { TARGETS, library } from './targets.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { values: o } = parseArgs({
  options: { target: { type: 'string' }, seed: { type: 'string', default: '1' }, seconds: { type: 'string', default: '10' }, cases: { type: 'string', default: '1000000' }, only: { type: 'string' } },
});
const target = TARGETS[o.target];
if (!target) throw new Error(`unknown target ${o.target}; targets: ${Object.keys(TARGETS).join(', ')}`);
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const lib = await library(ROOT);
// Limits low enough that every case stays far below the parent's memory cap; the fuzz checks that
// the loaders keep to them, whatever the file says.
lib.setLimits({ maxImagePixels: 1_000_000, maxImageBytes: 16 << 20, maxModelBytes: 64 << 20, maxTensorElements: 16 << 20 });
const gpu = await lib.initGpu();
const seeds = await target.seeds(lib, ROOT);
const scratch = join(tmpdir(), `saliency-fuzz-${process.pid}`);
const deadline = Date.now() + Number(o.seconds) * 1000;
const caseSeed = (i) => (Math.imul(Number(o.seed) ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(i, 0x85ebca6b)) >>> 0;

let models = 0;
let errors = 0;
let maxRss = 0;
let n = 0;
const first = o.only !== undefined ? Number(o.only) : 0;
const last = o.only !== undefined ? Number(o.only) + 1 : Number(o.cases);
try {
  for (let i = first; i < last && Date.now() < deadline; i++) {
    say({ case: i });
    const r = rng(caseSeed(i));
    const input = target.mutate(r.pick(seeds), r);
    const tensors = gpu.memory().tensors;
    let outcome;
    try {
      const result = await target.load(lib, gpu, input, scratch);
      result?.dispose?.();
      models++;
      outcome = null;
    } catch (e) {
      if (e instanceof lib.SaliencyError) {
        errors++;
        outcome = null;
      } else {
        outcome = `${e?.constructor?.name ?? typeof e}: ${String(e?.stack ?? e).slice(0, 2000)}`;
      }
    }
    if (!outcome && gpu.memory().tensors !== tensors) outcome = `left ${gpu.memory().tensors - tensors} tensors allocated`;
    if (outcome) {
      say({ fail: i, seed: Number(o.seed), target: o.target, error: outcome });
      process.exitCode = 1;
      break;
    }
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
    n++;
  }
  say({ done: n, models, errors, maxRssMiB: Math.round(maxRss / 2 ** 20) });
} finally {
  rmSync(scratch, { recursive: true, force: true });
  gpu.destroy();
}
process.exit(process.exitCode ?? 0);
