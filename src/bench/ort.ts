/**
 * The ONNX Runtime peer of `npm run bench -- --peer ort`: our VGG16-shaped model written as ONNX
 * (modelToOnnx, the importer's own protobuf schema: no Python), run by onnxruntime-node with its
 * WebGPU execution provider where it offers one on this machine's adapter, else its CPU provider.
 * Forward passes only (ONNX Runtime computes no input gradients), timed with the result read back,
 * like ours. onnxruntime-node is a dev dependency: it is loaded only when asked for.
 */
import { createRequire } from 'node:module';
import type { Model } from '../nets/model.js';
import { modelToOnnx } from '../nets/onnx/export.js';

type Ort = typeof import('onnxruntime-node');

export interface OrtPeer {
  /** 'webgpu' or 'cpu': the execution provider the session runs on. */
  provider: string;
  /** Why WebGPU was not used, when it was not. */
  webgpuError?: string;
  /** One forward pass of `x` (NCHW), its output read back to the CPU. */
  forward(x: Float32Array, shape: number[]): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Opens an ONNX Runtime session on `model`, on WebGPU when the runtime offers it, else on the CPU. */
export async function ortPeer(model: Model): Promise<OrtPeer> {
  const require = createRequire(import.meta.url);
  let ort: Ort;
  try {
    ort = require('onnxruntime-node') as Ort;
  } catch (e) {
    throw new Error(`--peer ort needs onnxruntime-node (a dev dependency): ${(e as Error).message.split('\n')[0]}`);
  }
  const bytes = await modelToOnnx(model);
  const offered = ort.listSupportedBackends?.().some((b) => b.name === 'webgpu') ?? false;
  let session: import('onnxruntime-node').InferenceSession | null = null;
  let provider = 'cpu';
  let webgpuError: string | undefined = offered ? undefined : 'this onnxruntime-node build has no WebGPU execution provider';
  if (offered) {
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'], logSeverityLevel: 3 });
      provider = 'webgpu';
    } catch (e) {
      webgpuError = (e as Error).message.split('\n')[0];
    }
  }
  session ??= await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const s = session;
  return {
    provider,
    ...(webgpuError ? { webgpuError } : {}),
    forward: async (x, shape) => {
      const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, shape) });
      const t = out[s.outputNames[0]!]!;
      const data = t.data as Float32Array;
      t.dispose();
      return data;
    },
    release: () => s.release(),
  };
}
