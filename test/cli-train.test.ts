/** The `saliency train` and `saliency evaluate` commands, run as a user runs them (built CLI). */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../src/nets/safetensors.js';

const run = promisify(execFile);
const cli = 'dist/cli/main.js';

describe.runIf(existsSync(cli))('saliency train / evaluate', () => {
  it('trains briefly with progress output, checkpoints atomically, and the file evaluates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-'));
    const out = join(dir, 'gap.safetensors');
    const { stdout } = await run(process.execPath, [
      cli, 'train', '--model', 'fashion-gap', '--epochs', '1', '--batch-size', '32', '--limit', '512', '--eval-limit', '200', '--seed', '3', '--out', out,
    ]);
    expect(stdout).toMatch(/training fashion-gap on 512 images: 1 epoch\(s\), batch 32, Adam lr 0\.001, seed 3/);
    expect(stdout).toMatch(/epoch 1\/1\s+step\s+\d+\/16\s+loss \d+\.\d+\s+running \d+\.\d+\s+\d+ img\/s/);
    expect(stdout).toMatch(/epoch 1: test accuracy \d+\.\d\d% on 200 test images/);
    expect(readdirSync(dir)).toEqual(['gap.safetensors']); // no .partial left behind
    const meta = parseSafetensors(new Uint8Array(readFileSync(out))).metadata;
    expect(meta.seed).toBe('3');
    expect(JSON.parse(meta.spec!).name).toBe('fashion-gap');
    const evaluated = await run(process.execPath, [cli, 'evaluate', '--model', out, '--limit', '200']);
    expect(evaluated.stdout).toMatch(/^evaluating .*gap\.safetensors on 200 test images …$/m); // said before the wait
    const trained = Number(/test accuracy (\d+\.\d+)%/.exec(stdout)![1]);
    const measured = Number(/test accuracy (\d+\.\d+)% on 200 images/.exec(evaluated.stdout)![1]);
    expect(measured).toBe(trained); // the saved weights are the ones that were measured
    expect(measured).toBeGreaterThan(20); // 512 images are enough to beat chance (10%)
  });

  it('resumes from its own checkpoint, continuing the epoch count', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'resume-'));
    const first = join(dir, 'a.safetensors');
    const args = ['train', '--model', 'fashion-gap', '--batch-size', '32', '--limit', '128', '--eval-limit', '100', '--seed', '4'];
    await run(process.execPath, [cli, ...args, '--epochs', '1', '--out', first]);
    const second = join(dir, 'b.safetensors');
    const { stdout } = await run(process.execPath, [cli, ...args, '--epochs', '2', '--resume', first, '--out', second]);
    expect(stdout).toMatch(/resuming after epoch 1 from .*a\.safetensors/);
    expect(stdout).toMatch(/epoch 2\/2\s+step/);
    expect(stdout).not.toMatch(/epoch 1\/2/);
    const meta = parseSafetensors(new Uint8Array(readFileSync(second))).metadata;
    expect(meta.epochs).toBe('2 of 2');
    expect(meta.resumedAfterEpoch).toBe('1');
    const err = await run(process.execPath, [cli, ...args, '--epochs', '1', '--resume', first, '--out', second]).catch((e) => e);
    expect(err.stderr).toMatch(/already has 1 epochs; ask for more with --epochs/);
  });

  /** Brief runs for the --init and --freeze tests, and the fashion-vgg file both start from (trained once). */
  const args = ['--batch-size', '32', '--limit', '64', '--eval-limit', '50', '--epochs', '1'];
  let briefVgg: Promise<string> | undefined;
  const trainedVgg = () =>
    (briefVgg ??= (async () => {
      const vgg = join(mkdtempSync(join(tmpdir(), 'vgg-')), 'vgg.safetensors');
      await run(process.execPath, [cli, 'train', '--model', 'fashion-vgg', ...args, '--out', vgg]);
      return vgg;
    })());

  it('--init starts from the layers of another model with the same names and shapes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'));
    const vgg = await trainedVgg();
    const gap = join(dir, 'gap.safetensors');
    const { stdout } = await run(process.execPath, [cli, 'train', '--model', 'fashion-gap', ...args, '--init', vgg, '--out', gap]);
    expect(stdout).toMatch(/initialised conv1, conv2, conv3, conv4 from .*vgg\.safetensors; the other layers seeded/);
    expect(parseSafetensors(new Uint8Array(readFileSync(gap))).metadata.init).toBe(vgg);
    // conv1 of another shape (3 input channels) matches nothing.
    const other = join(dir, 'other.safetensors');
    writeFileSync(other, serializeSafetensors({ 'conv1.weight': { shape: [16, 3, 3, 3], data: new Float32Array(432) }, 'conv1.bias': { shape: [16], data: new Float32Array(16) } }));
    const err = await run(process.execPath, [cli, 'train', '--model', 'fashion-vgg', ...args, '--init', other, '--out', join(dir, 'v.safetensors')]).catch((e) => e);
    expect(err.stderr).toMatch(/--init: .*other\.safetensors has no layer with the name and shapes of one of 'fashion-vgg'/);
  });

  it('--freeze keeps the named layers as --init left them and trains the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freeze-'));
    const vgg = await trainedVgg();
    const gap = join(dir, 'gap.safetensors');
    const { stdout } = await run(process.execPath, [cli, 'train', '--model', 'fashion-gap', ...args, '--init', vgg, '--freeze', 'conv1,conv2', '--out', gap]);
    expect(stdout).toMatch(/frozen \(not trained\): conv1, conv2/);
    const before = parseSafetensors(new Uint8Array(readFileSync(vgg))).tensors;
    const after = parseSafetensors(new Uint8Array(readFileSync(gap)));
    expect(after.metadata.frozen).toBe('conv1,conv2');
    for (const name of ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias']) {
      expect(Array.from(after.tensors.get(name)!.data)).toEqual(Array.from(before.get(name)!.data));
    }
    // conv3 started from the same values but was trained.
    expect(Array.from(after.tensors.get('conv3.weight')!.data)).not.toEqual(Array.from(before.get('conv3.weight')!.data));
    expect(after.metadata.init).toBe(vgg);
    // Resuming keeps the checkpoint's frozen layers and records where it started from.
    const more = join(dir, 'gap2.safetensors');
    const resumed = await run(process.execPath, [cli, 'train', '--model', 'fashion-gap', ...args, '--epochs', '2', '--resume', gap, '--out', more]);
    expect(resumed.stdout).toMatch(/frozen \(not trained\): conv1, conv2/);
    const again = parseSafetensors(new Uint8Array(readFileSync(more)));
    expect(again.metadata.frozen).toBe('conv1,conv2');
    expect(again.metadata.init).toBe(vgg);
    expect(Array.from(again.tensors.get('conv1.weight')!.data)).toEqual(Array.from(before.get('conv1.weight')!.data));
    for (const [extra, message] of [
      [['--freeze', 'relu1'], /--freeze: cannot freeze layer 'relu1' of 'fashion-gap': a relu layer has no trainable parameters/],
      [['--freeze', 'conv9'], /--freeze: model 'fashion-gap' has no layer 'conv9'; layers: conv1, relu1/],
      [['--freeze', 'conv1'], /--freeze: cannot freeze conv1: no --init file provides it, and frozen seeded weights would stay random/],
      [['--init', vgg, '--freeze', 'conv5'], /--freeze: cannot freeze conv5: .*vgg\.safetensors did not provide it/],
      [['--init', vgg, '--resume', gap, '--epochs', '2'], /--init and --resume exclude each other/],
    ] as const) {
      const err = await run(process.execPath, [cli, 'train', '--model', 'fashion-gap', ...args, ...extra, '--out', join(dir, 'x.safetensors')]).catch((e) => e);
      expect(err.code).toBe(1);
      expect(err.stderr).toMatch(message);
      expect(existsSync(join(dir, 'x.safetensors'))).toBe(false);
    }
  });

  it('checks --out before training, in one line, and leaves no file behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'out-'));
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'a file');
    const brief = ['train', '--model', 'fashion-gap', '--limit', '32', '--batch-size', '32', '--eval-limit', '10', '--epochs', '1'];
    const outs: [string, RegExp][] = [
      // A directory: the rename after the first epoch used to fail with a stack trace, leaving dir.partial.
      [dir, /--out .*out-\w+ is a directory; name the file to write/],
      [join(file, 'gap.safetensors'), /--out .*notes\.txt\/gap\.safetensors: cannot write there \(.*notes\.txt is a file, not a directory\)/],
    ];
    // Node's mkdir -p never returns under /proc; writing there fails too.
    if (existsSync('/proc/self')) outs.push(['/proc/saliency-test/gap.safetensors', /cannot write there/], ['/proc/gap.safetensors', /cannot write there/]);
    for (const [out, message] of outs) {
      const err = await run(process.execPath, [cli, ...brief, '--out', out], { timeout: 60_000 }).catch((e) => e);
      expect(err.code, out).toBe(1);
      expect(err.stderr).toMatch(message);
      expect(err.stderr).not.toMatch(/at .*\.js:\d+/);
      expect(err.stdout).not.toMatch(/epoch 1/); // before any training
    }
    expect(readdirSync(dir)).toEqual(['notes.txt']);
    expect(existsSync(`${dir}.partial`)).toBe(false);
  });

  it('rejects bad options with one clear line', async () => {
    for (const [args, message] of [
      [['train', '--model', 'resnet'], /no bundled architecture 'resnet'; choose one of fashion-vgg, fashion-gap, fashion-detector/],
      [['train', '--model', 'fashion-gap', '--epochs', '0'], /--epochs must be a positive integer/],
      [['evaluate', '--model', 'missing.safetensors'], /cannot read missing.safetensors: no such file/],
      [['evaluate', '--model', 'nonsense'], /neither a bundled model/],
      [['train', '--model', 'fashion-gap', '--epochs', '2', '--limit', '32', '--resume', tmpdir(), '--out', join(tmpdir(), 'never.safetensors')], /--resume: cannot read .* \(it is a directory\)/],
      [['train', '--model', 'fashion-gap', '--seed', ''], /--seed must be an integer ≥ 0/],
    ] as const) {
      const err = await run(process.execPath, [cli, ...args]).catch((e) => e);
      expect(err.code).toBe(1);
      expect(err.stderr).toMatch(message);
      expect(err.stderr).not.toMatch(/at .*\.js:\d+/);
    }
  });
});
