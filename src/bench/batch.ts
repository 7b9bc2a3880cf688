/**
 * The bench's `saliency batch` section: images per second of Grad-CAM on fashion-vgg through the
 * whole batch pipeline (decoding on worker threads, GPU batches, .npy files, results lines), at
 * batch size 1 and at the automatic size, and where the time goes (decoding on the workers against
 * the GPU loop). It runs the real command (`batch --json`) in a child process, on 28×28 PNGs it
 * writes to a temporary folder.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { encodePng } from '../saliency/image.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface BatchRun {
  batch_size: number;
  images_per_second: number;
  seconds: number;
  /** Summed time the worker threads spent decoding. */
  decode_seconds: number;
  /** Time the GPU loop waited for decoded images. */
  decode_wait_seconds: number;
  /** Time in forward passes, Grad-CAM and reading maps back. */
  gpu_seconds: number;
  write_seconds: number;
  /** CPU time of the process, all threads: on a CPU adapter, the work's cost whatever else runs. */
  cpu_seconds: number;
}

export interface BatchSpeed {
  images: number;
  batch1: BatchRun;
  auto: BatchRun;
  /** auto's images per second over batch 1's. */
  speedup: number;
  /** batch 1's CPU time per image over auto's. */
  cpu_speedup: number;
}

/** A grey 28×28 image: a few soft blobs that differ from image to image. */
function image(i: number): Uint8Array {
  const data = new Uint8ClampedArray(28 * 28 * 4);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = 127.5 * (1 + Math.sin((x + i) * 0.37 + Math.cos(y * 0.29 + i)) * Math.cos((y - i) * 0.21));
      data.set([v, v, v, 255], (y * 28 + x) * 4);
    }
  }
  return encodePng({ width: 28, height: 28, data });
}

async function once(input: string, out: string, batchSize: string): Promise<BatchRun> {
  const { stdout } = await run(process.execPath, [cli, 'batch', '--model', 'fashion-vgg', '--input', input, '--method', 'gradCam', '--batch-size', batchSize, '--out', out, '--json'], {
    maxBuffer: 1 << 24,
  });
  const s = JSON.parse(stdout) as { batchSize: number; imagesPerSecond: number; seconds: number; decodeSeconds: number; decodeWaitSeconds: number; gpuSeconds: number; writeSeconds: number; cpuSeconds: number };
  return {
    batch_size: s.batchSize,
    images_per_second: s.imagesPerSecond,
    seconds: s.seconds,
    decode_seconds: s.decodeSeconds,
    decode_wait_seconds: s.decodeWaitSeconds,
    gpu_seconds: s.gpuSeconds,
    write_seconds: s.writeSeconds,
    cpu_seconds: s.cpuSeconds,
  };
}

export async function batchSpeed(images: number, log: (s: string) => void): Promise<BatchSpeed> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-batch-'));
  try {
    const input = join(dir, 'images');
    mkdirSync(input);
    for (let i = 0; i < images; i++) writeFileSync(join(input, `${String(i).padStart(5, '0')}.png`), image(i));
    const batch1 = await once(input, join(dir, 'out-1'), '1');
    const auto = await once(input, join(dir, 'out-auto'), 'auto');
    const speedup = Math.round((auto.images_per_second / batch1.images_per_second) * 100) / 100;
    const cpuSpeedup = Math.round((batch1.cpu_seconds / auto.cpu_seconds) * 100) / 100;
    const line = (r: BatchRun) =>
      `${r.images_per_second} images/s (GPU ${r.gpu_seconds} s; decoding ${r.decode_seconds} s on the workers, waited for ${r.decode_wait_seconds} s; writing ${r.write_seconds} s; ` +
      `CPU ${Math.round((r.cpu_seconds / images) * 1e4) / 10} ms per image)`;
    log(`saliency batch, Grad-CAM on fashion-vgg, ${images} images of 28×28:`);
    log(`  batch 1: ${line(batch1)}`);
    log(`  auto (${auto.batch_size}): ${line(auto)}; ${speedup}× batch 1 in images/s, ${cpuSpeedup}× in CPU time`);
    return { images, batch1, auto, speedup, cpu_speedup: cpuSpeedup };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
