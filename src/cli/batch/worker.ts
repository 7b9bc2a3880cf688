/**
 * A worker thread of `saliency batch` (node:worker_threads): it decodes images into model input
 * while the main thread keeps the GPU busy, and writes the outputs of finished images (.npy,
 * .safetensors, PNG overlays), each atomically. It never touches the GPU.
 */
import { parentPort } from 'node:worker_threads';
import { dirname } from 'node:path';
import { readRegularFile, writeFileAtomic } from '../../runtime/files.js';
import { encodeNpy } from '../../runtime/npy.js';
import { SaliencyError } from '../../runtime/errors.js';
import { serializeSafetensors } from '../../nets/safetensors.js';
import { decodeImage, encodePng, imageToTensorData, makeDirectory } from '../../saliency/image.js';
import { cropRgba, inputToRgba } from '../../saliency/input.js';
import { renderOverlay } from '../../saliency/render.js';
import type { Task, TaskResult } from './pool.js';
import { fileProblem } from '../output.js';

function run(task: Task): TaskResult {
  const t0 = performance.now();
  if (task.kind === 'decode') {
    try {
      const bytes = readRegularFile(task.file, { maxBytes: task.maxBytes, what: 'image' });
      const img = decodeImage(bytes, task.file);
      const region = task.crop ? cropRgba(img, task.crop) : img;
      const data = imageToTensorData(region, { channels: task.channels, width: task.width, height: task.height, background: [0, 0, 0] });
      return { id: task.id, ok: true, data, ms: performance.now() - t0, source: [img.width, img.height] };
    } catch (e) {
      return { id: task.id, ok: false, error: problem(e), ms: performance.now() - t0 };
    }
  }
  // write: every file of one image; an error here is the disk's, not the image's.
  let current = '';
  try {
    for (const out of task.outputs) {
      current = out.path;
      makeDirectory(dirname(out.path));
      if (out.kind === 'npy') writeFileAtomic(out.path, encodeNpy(out.data, out.shape));
      else if (out.kind === 'safetensors') writeFileAtomic(out.path, serializeSafetensors({ [out.name]: { data: out.data, shape: out.shape } }, out.metadata));
      else {
        const view = inputToRgba(out.input, out.channels, out.width, out.height);
        const image = renderOverlay({ data: out.data, shape: [1, ...out.shape] }, view, { size: out.size, kind: out.mapKind });
        writeFileAtomic(out.path, encodePng(image));
      }
    }
    return { id: task.id, ok: true, ms: performance.now() - t0 };
  } catch (e) {
    return { id: task.id, ok: false, error: `cannot write ${current} (${e instanceof SaliencyError ? e.message : fileProblem(e)})`, ms: performance.now() - t0 };
  }
}

/** One line for the results file: our own errors' messages, and the others' with their kind. */
function problem(e: unknown): string {
  if (e instanceof SaliencyError) return e.message;
  if (e instanceof RangeError) return `cannot decode the image (${e.message}; is it too large?)`;
  return `cannot decode the image (${e instanceof Error ? e.message : String(e)})`;
}

parentPort!.on('message', (task: Task) => {
  const result = run(task);
  const transfer = result.ok && 'data' in result ? [result.data.buffer as ArrayBuffer] : [];
  parentPort!.postMessage(result, transfer);
});
