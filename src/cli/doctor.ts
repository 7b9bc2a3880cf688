/** `saliency doctor`: reports the WebGPU adapter and checks a few kernels against plain TypeScript. */
import { initGpu } from '../runtime/gpu.js';
import { tensor } from '../runtime/tensor.js';
import { add } from '../kernels/elementwise.js';
import { GpuError } from '../runtime/errors.js';

export interface DoctorOptions {
  json: boolean;
}

export async function doctor(options: DoctorOptions): Promise<void> {
  const t0 = performance.now();
  const gpu = await initGpu();
  try {
    const a = tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tensor(gpu, [10, 20, 30], [3]);
    const sum = await (await add(a, b)).read();
    const expected = [11, 22, 33, 14, 25, 36];
    const ok = expected.every((v, i) => sum[i] === v);
    const report = {
      adapter: gpu.adapter.name,
      software: gpu.adapter.isSoftware,
      maxStorageBufferBindingMiB: Math.round(gpu.limits.maxStorageBufferBindingSize / 2 ** 20),
      maxWorkgroupStorageKiB: Math.round(gpu.limits.maxComputeWorkgroupStorageSize / 1024),
      maxInvocationsPerWorkgroup: gpu.limits.maxComputeInvocationsPerWorkgroup,
      selfCheck: ok ? 'passed' : 'FAILED',
      ms: Math.round(performance.now() - t0),
    };
    if (options.json) {
      process.stdout.write(JSON.stringify(report) + '\n');
    } else {
      process.stdout.write(
        `adapter:            ${report.adapter}${report.software ? ' (software, CPU)' : ''}\n` +
          `storage binding:    ${report.maxStorageBufferBindingMiB} MiB\n` +
          `workgroup memory:   ${report.maxWorkgroupStorageKiB} KiB, ${report.maxInvocationsPerWorkgroup} invocations\n` +
          `kernel self-check:  ${report.selfCheck} (${report.ms} ms)\n`,
      );
    }
    if (!ok) throw new GpuError(`kernel self-check failed: got ${[...sum]}, expected ${expected}`);
  } finally {
    gpu.destroy();
  }
}
