/**
 * ONNX conformance (libonnx-testdata) against ONNX Runtime's CPU provider. CI runs a
 * representative subset; `npm run conformance` runs every node and pytorch-converted case and
 * writes the per-op counts to out/conformance.json and out/conformance.md (the table in
 * docs/import.md).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/runtime/gpu.js';
import { getGpu } from './helpers.js';
import { listCases, runCase, tally, type ConformanceCase, type Outcome } from './onnx-conformance.js';

const FULL = process.env.CONFORMANCE === 'full';
let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
});

describe.runIf(FULL)('ONNX conformance: the full run', () => {
  it('every node and pytorch-converted case', { timeout: 3_600_000 }, async () => {
    const cases = [...listCases('node'), ...listCases('pytorch-converted'), ...listCases('pytorch-operator')];
    const only = process.env.CONFORMANCE_FILTER ? new RegExp(process.env.CONFORMANCE_FILTER) : null;
    const results: { case: ConformanceCase; outcome: Outcome }[] = [];
    for (const c of cases) {
      if (only && !only.test(c.name)) continue;
      const outcome = await runCase(gpu, c);
      results.push({ case: c, outcome });
      if (process.env.CONFORMANCE_VERBOSE || (outcome.status === 'fail')) console.log(`${c.suite}/${c.name} [${c.ops.join(', ')}]: ${outcome.status}${'detail' in outcome ? ` — ${outcome.detail.slice(0, 300)}` : ''}`);
    }
    const counts = tally(results);
    mkdirSync('out', { recursive: true });
    writeFileSync('out/conformance.json', JSON.stringify({ counts: Object.fromEntries(counts), results: results.map((r) => ({ suite: r.case.suite, name: r.case.name, ops: r.case.ops, ...r.outcome })) }, null, 1));
    const lines = ['| op | pass | fail | unsupported | skipped |', '|---|---:|---:|---:|---:|', ...[...counts].map(([op, t]) => `| ${op} | ${t.pass} | ${t.fail} | ${t.unsupported} | ${t.skipped} |`)];
    writeFileSync('out/conformance.md', lines.join('\n') + '\n');
    const total = (s: Outcome['status']) => results.filter((r) => r.outcome.status === s).length;
    console.log(`conformance: ${total('pass')} pass, ${total('fail')} fail, ${total('unsupported')} unsupported, ${total('skipped')} skipped of ${results.length} cases → out/conformance.md`);
    expect(total('fail')).toBe(0);
  });
});
