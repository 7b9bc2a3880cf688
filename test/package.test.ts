/** The built package as a user gets it: `import … from 'webgpu-saliency'` and the `saliency` command. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const built = existsSync('dist/index.js');

describe.runIf(built)('built package (npm run build)', () => {
  it('imports from the package name and runs a kernel and a backward pass', async () => {
    const script = `
      import { initGpu, tensor, Tape, ops, kernels } from 'webgpu-saliency';
      const gpu = await initGpu();
      const x = tensor(gpu, [1, -2, 3], [3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(async () => ops.sum(await ops.relu(x), 'all'));
      const g = await tape.backward(y);
      const out = { y: [...await y.read()], g: [...await g.of(x).read()], hasConv: typeof kernels.conv2dForward };
      gpu.destroy();
      console.log(JSON.stringify(out));
      process.exit(0);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ y: [4], g: [1, 0, 1], hasConv: 'function' });
  });

  it('saliency doctor reports the adapter; bad commands fail with one clear line', async () => {
    const { stdout } = await run(process.execPath, ['dist/cli/main.js', 'doctor', '--json']);
    const report = JSON.parse(stdout);
    expect(report.selfCheck).toBe('passed');
    expect(report.adapter.length).toBeGreaterThan(0);
    const help = await run(process.execPath, ['dist/cli/main.js', '--help']);
    expect(help.stdout).toMatch(/doctor/);
    await expect(run(process.execPath, ['dist/cli/main.js', 'no-such-command'])).rejects.toMatchObject({ code: 1 });
  });

  it('saliency doctor explains a missing GPU driver instead of crashing', async () => {
    const env = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
    const err = await run(process.execPath, ['dist/cli/main.js', 'doctor'], { env }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/saliency: no WebGPU adapter found.*lavapipe/s);
    expect(err.stderr).not.toMatch(/at .*\.js:\d+/); // no JavaScript stack trace (Dawn prints its own warnings)
  });
});
