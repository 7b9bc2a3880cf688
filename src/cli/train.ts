/** `saliency train` and `saliency evaluate`: train a bundled architecture on Fashion-MNIST, or measure one. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { ArgumentError } from '../runtime/errors.js';
import { DataLoader } from '../nets/data.js';
import { loadFashionMnist } from '../nets/idx.js';
import { modelFromSafetensors, modelFromSpec, type Model } from '../nets/model.js';
import { Adam } from '../nets/optim.js';
import { evaluate, train } from '../nets/train.js';
import { BUNDLED_MODELS, bundledWeightsUrl, loadModel } from '../nets/zoo.js';

export interface TrainCommandOptions {
  model: string;
  epochs: number;
  batchSize: number;
  lr: number;
  /** Multiply the learning rate by this after each epoch. */
  lrDecay: number;
  seed: number;
  /** Use only the first N training images (default: all 60,000). */
  limit?: number;
  out?: string;
  /** Test images to evaluate on at the end (default: all 10,000). */
  evalLimit?: number;
}

export async function trainCommand(o: TrainCommandOptions): Promise<void> {
  const spec = BUNDLED_MODELS[o.model];
  if (!spec) throw new ArgumentError(`no bundled architecture '${o.model}'; choose one of ${Object.keys(BUNDLED_MODELS).join(', ')}`);
  const out = resolve(o.out ?? fileURLToPath(bundledWeightsUrl(o.model)));
  const trainSet = loadFashionMnist('train', undefined, { limit: o.limit });
  const testSet = loadFashionMnist('test', undefined, { limit: o.evalLimit });
  const gpu = await initGpu({ log: (m) => console.log(m) });
  try {
    const model = modelFromSpec(gpu, spec, undefined, { seed: o.seed });
    const loader = new DataLoader(gpu, {
      images: trainSet.images,
      labels: trainSet.labels,
      sampleShape: spec.input,
      batchSize: o.batchSize,
      seed: o.seed,
    });
    const optimizer = new Adam({ lr: o.lr });
    console.log(
      `training ${o.model} on ${trainSet.count} images: ${o.epochs} epoch(s), batch ${o.batchSize}, Adam lr ${o.lr}` +
        (o.lrDecay !== 1 ? ` ×${o.lrDecay}/epoch` : '') +
        `, seed ${o.seed}`,
    );
    const started = Date.now();
    // After every epoch: measure, and save a checkpoint, so a long run that is stopped keeps its
    // last complete epoch (with its accuracy and the exact settings in the file's metadata).
    await train(model, loader, {
      epochs: o.epochs,
      optimizer,
      log: (line) => console.log(line),
      onEpochEnd: async ({ epoch }) => {
        const accuracy = await evaluate(model, testSet.images, testSet.labels, { sampleShape: spec.input });
        console.log(`epoch ${epoch}: test accuracy ${(accuracy * 100).toFixed(2)}% on ${testSet.count} test images`);
        const bytes = await model.toSafetensors({
          model: o.model,
          seed: String(o.seed),
          epochs: `${epoch} of ${o.epochs}`,
          batchSize: String(o.batchSize),
          lr: String(o.lr),
          lrDecay: String(o.lrDecay),
          trainImages: String(trainSet.count),
          testAccuracy: accuracy.toFixed(4),
          testImages: String(testSet.count),
          trainingSeconds: String(Math.round((Date.now() - started) / 1000)),
          adapter: gpu.adapter.name,
          date: new Date().toISOString(),
        });
        // Write beside the target and rename: an interrupted run never leaves a half-written file.
        await mkdir(dirname(out), { recursive: true });
        await writeFile(`${out}.partial`, bytes);
        await rename(`${out}.partial`, out);
        console.log(`wrote ${out} (${(bytes.length / 1024).toFixed(0)} KiB)`);
        optimizer.lr *= o.lrDecay;
      },
    });
    optimizer.dispose();
    model.dispose();
  } finally {
    gpu.destroy();
  }
}

export interface EvaluateCommandOptions {
  model: string;
  limit?: number;
}

/** Loads a bundled model by name, or a .safetensors file written by `train`. */
export async function loadModelArgument(gpu: Gpu, name: string): Promise<Model> {
  if (BUNDLED_MODELS[name]) return loadModel(gpu, name);
  if (!name.endsWith('.safetensors')) {
    throw new ArgumentError(`'${name}' is neither a bundled model (${Object.keys(BUNDLED_MODELS).join(', ')}) nor a .safetensors file`);
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(name));
  } catch (e) {
    throw new ArgumentError(`cannot read ${name}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return modelFromSafetensors(gpu, bytes, undefined, name);
}

export async function evaluateCommand(o: EvaluateCommandOptions): Promise<void> {
  const testSet = loadFashionMnist('test', undefined, { limit: o.limit });
  const gpu = await initGpu();
  try {
    const model = await loadModelArgument(gpu, o.model);
    const accuracy = await evaluate(model, testSet.images, testSet.labels, { sampleShape: [...model.inputShape] });
    console.log(`${o.model}: test accuracy ${(accuracy * 100).toFixed(2)}% on ${testSet.count} images (${gpu.adapter.name})`);
    model.dispose();
  } finally {
    gpu.destroy();
  }
}
