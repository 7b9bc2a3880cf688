/**
 * ONNX conformance (Debian's libonnx-testdata: ONNX's node tests and the PyTorch-converted ones)
 * against ONNX Runtime's CPU provider, outputs within 1e-4 relative (test/onnx-conformance.ts).
 *
 * CI runs SUBSET, two or so cases of every supported op (node and pytorch-converted). `npm run
 * conformance` runs every case and writes out/conformance.json and out/conformance.md: per op (a
 * case counts for the op when the op is the only one in its model, Constant aside), how many pass,
 * fail, are unsupported (the importer refuses the model with a FormatError that says why) or are
 * skipped (no float input to be the image input, or ONNX Runtime itself cannot run the case); the
 * cases of several ops; and the ops of the test data we do not support. docs/import.md shows it.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SUPPORTED_ONNX_OPS } from '../src/nets/onnx/ops/index.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { getGpu } from './helpers.js';
import { listCases, runCase, TESTDATA, type ConformanceCase, type Outcome } from './onnx-conformance.js';

const FULL = process.env.CONFORMANCE === 'full';
const HAVE = existsSync(`${TESTDATA}/node`);

/** Representative cases: each supported op, its usual attributes, in both suites. */
export const SUBSET = [
  'node/test_conv_with_strides_and_asymmetric_padding', 'node/test_conv_with_autopad_same', 'node/test_basic_conv_without_padding',
  'pytorch-converted/test_Conv2d_depthwise_with_multiplier', 'pytorch-converted/test_Conv2d_dilated', 'pytorch-converted/test_Conv2d_groups',
  'pytorch-converted/test_Conv1d_stride', 'node/test_convtranspose_pads', 'node/test_convtranspose_output_shape', 'pytorch-converted/test_ConvTranspose2d',
  'node/test_maxpool_2d_ceil', 'node/test_maxpool_2d_same_upper', 'node/test_maxpool_2d_dilations', 'pytorch-converted/test_MaxPool2d_stride_padding_dilation',
  'node/test_averagepool_2d_pads_count_include_pad', 'node/test_averagepool_2d_ceil', 'node/test_averagepool_2d_same_lower', 'pytorch-converted/test_AvgPool2d_stride',
  'node/test_globalaveragepool', 'node/test_globalmaxpool', 'node/test_batchnorm_epsilon', 'pytorch-converted/test_BatchNorm2d_momentum_eval',
  'node/test_gemm_all_attributes', 'node/test_gemm_transposeA', 'pytorch-converted/test_Linear', 'node/test_matmul_3d', 'node/test_matmul_4d',
  'node/test_add_bcast', 'node/test_sub_bcast', 'node/test_mul_bcast', 'node/test_div_bcast', 'node/test_sum_two_inputs',
  'node/test_relu', 'node/test_leakyrelu', 'node/test_prelu_broadcast', 'pytorch-converted/test_PReLU_2d', 'node/test_clip', 'node/test_clip_default_max',
  'node/test_sigmoid', 'node/test_hardsigmoid', 'node/test_hardswish', 'node/test_tanh', 'node/test_softmax_axis_1', 'node/test_logsoftmax_axis_0',
  'pytorch-converted/test_log_softmax_dim3', 'node/test_flatten_axis1', 'node/test_reshape_negative_dim', 'node/test_transpose_all_permutations_4',
  'node/test_concat_3d_axis_1', 'node/test_squeeze', 'node/test_unsqueeze_axis_1', 'node/test_identity', 'node/test_dropout_default', 'node/test_gather_1',
  'node/test_constant_pad', 'pytorch-converted/test_ReplicationPad2d', 'pytorch-converted/test_ZeroPad2d', 'pytorch-converted/test_ReflectionPad2d',
  'node/test_resize_upsample_scales_linear_align_corners', 'node/test_resize_downsample_scales_linear', 'node/test_resize_upsample_sizes_nearest_ceil_half_pixel',
  'node/test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn', 'node/test_upsample_nearest', 'node/test_reduce_mean_keepdims_example',
  'node/test_reduce_sum_do_not_keepdims_example', 'node/test_reduce_max_keepdims_random', 'node/test_neg', 'node/test_expand_dim_unchanged', 'node/test_slice_default_axes',
]; // prettier-ignore

let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
});

function cases(): ConformanceCase[] {
  return [...listCases('node'), ...listCases('pytorch-converted'), ...listCases('pytorch-operator')];
}

// `npm test` runs the subset; `npm run conformance` (CONFORMANCE=full) runs every case instead (and
// only that: neither is reported as skipped). Without the test data the test fails rather than
// skips: scripts/setup-system.sh installs it.
if (!FULL) describe('ONNX conformance: a representative subset against ONNX Runtime', () => {
  it('every case of SUBSET passes (outputs within 1e-4 of ONNX Runtime)', { timeout: 600_000 }, async () => {
    expect(HAVE, `${TESTDATA} is missing: install Debian's libonnx-testdata (scripts/setup-system.sh does)`).toBe(true);
    const byName = new Map(cases().map((c) => [`${c.suite}/${c.name}`, c]));
    const problems: string[] = [];
    for (const name of SUBSET) {
      const c = byName.get(name);
      if (!c) {
        problems.push(`${name}: not in the test data`);
        continue;
      }
      const o = await runCase(gpu, c);
      if (o.status !== 'pass') problems.push(`${name}: ${o.status}${'detail' in o ? ` (${o.detail.slice(0, 200)})` : ''}`);
    }
    expect(problems).toEqual([]);
    // The subset touches every op of the table but Constant-only folding helpers.
    const ops = new Set(SUBSET.flatMap((n) => byName.get(n)?.ops ?? []));
    const untested = SUPPORTED_ONNX_OPS.filter((op) => !ops.has(op));
    expect(untested).toEqual(['Cast', 'Constant', 'ConstantOfShape', 'Equal', 'Max', 'Min', 'Shape', 'Size', 'Where']);
  });
});

if (FULL) describe('ONNX conformance: the full run', () => {
  it('every node, pytorch-converted and pytorch-operator case', { timeout: 3_600_000 }, async () => {
    expect(HAVE, `${TESTDATA} is missing: install Debian's libonnx-testdata (scripts/setup-system.sh does)`).toBe(true);
    const only = process.env.CONFORMANCE_FILTER ? new RegExp(process.env.CONFORMANCE_FILTER) : null;
    const results: { case: ConformanceCase; outcome: Outcome }[] = [];
    for (const c of cases()) {
      if (only && !only.test(c.name)) continue;
      const outcome = await runCase(gpu, c);
      results.push({ case: c, outcome });
      if (process.env.CONFORMANCE_VERBOSE || outcome.status === 'fail') console.log(`${c.suite}/${c.name} [${c.ops.join(', ')}]: ${outcome.status}${'detail' in outcome ? ` — ${outcome.detail.slice(0, 300)}` : ''}`);
    }
    type Counts = Record<Outcome['status'], number>;
    const zero = (): Counts => ({ pass: 0, fail: 0, unsupported: 0, skipped: 0 });
    const perOp = new Map<string, Counts>();
    const several = zero();
    for (const r of results) {
      const t = r.case.ops.length === 1 ? (perOp.get(r.case.ops[0]!) ?? zero()) : several;
      t[r.outcome.status]++;
      if (r.case.ops.length === 1) perOp.set(r.case.ops[0]!, t);
    }
    const supported = new Set(SUPPORTED_ONNX_OPS);
    const row = (name: string, t: Counts) => `| ${name} | ${t.pass} | ${t.fail} | ${t.unsupported} | ${t.skipped} |`;
    const head = ['| op | pass | fail | unsupported | skipped |', '|---|---:|---:|---:|---:|'];
    const ours = [...perOp].filter(([op]) => supported.has(op)).sort(([a], [b]) => a.localeCompare(b));
    const notOurs = [...perOp].filter(([op]) => !supported.has(op)).sort(([a], [b]) => a.localeCompare(b));
    const total = (s: Outcome['status']) => results.filter((r) => r.outcome.status === s).length;
    const md = [
      `${results.length} cases: ${total('pass')} pass, ${total('fail')} fail, ${total('unsupported')} unsupported, ${total('skipped')} skipped.`,
      '',
      ...head,
      ...ours.map(([op, t]) => row(op, t)),
      row('(cases with several ops)', several),
      '',
      `Ops of the test data we do not support (${notOurs.length}, cases): ${notOurs.map(([op, t]) => `${op} (${t.pass + t.fail + t.unsupported + t.skipped})`).join(', ')}.`,
    ];
    mkdirSync('out', { recursive: true });
    writeFileSync('out/conformance.json', JSON.stringify({ counts: Object.fromEntries(perOp), several, results: results.map((r) => ({ suite: r.case.suite, name: r.case.name, ops: r.case.ops, ...r.outcome })) }, null, 1));
    writeFileSync('out/conformance.md', md.join('\n') + '\n');
    console.log(`conformance: ${md[0]} → out/conformance.md`);
    expect(total('fail')).toBe(0);
  });
});
