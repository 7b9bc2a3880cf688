/** `saliency train` and `saliency evaluate`: train a bundled architecture on Fashion-MNIST, or measure one. */
import { existsSync, statSync } from 'node:fs';
import { GRAPH_MODEL_CLASSES } from '../nets/tfjs-graph.js';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { ArgumentError } from '../runtime/errors.js';
import { DataLoader } from '../nets/data.js';
import { loadFashionMnist } from '../nets/idx.js';
import { Model, modelFromSafetensors, modelFromSpec } from '../nets/model.js';
import { Adam } from '../nets/optim.js';
import { evaluate, train } from '../nets/train.js';
import { BUNDLED_MODELS, bundledWeightsUrl, loadModel, type AnyModel, type LoadModelOptions } from '../nets/zoo.js';
import type { ModelSpec, Weights } from '../nets/spec.js';
import { FASHION_DETECTOR, evaluateDetector, heldOutScene, trainDetector } from '../nets/detector.js';
import { parseSafetensors } from '../nets/safetensors.js';
import { makeDirectory, readModelFile, writeFileAtomic } from '../runtime/files.js';
import { fileProblem, outputFile } from './output.js';

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
  /** Test images to evaluate on at the end (default: all 10,000; detector: 500 scenes). */
  evalLimit?: number;
  /** fashion-detector: synthetic scenes per epoch (default 20,000). */
  scenes?: number;
  /** A checkpoint written by this command, to continue from. */
  resume?: string;
  /** A .safetensors file whose layers of the same name and shape initialise the new model. */
  init?: string;
  /** Layers to keep as they are (typically the ones --init filled). */
  freeze?: string[];
}

/**
 * The weights of `file` for the layers of `spec` that have the same name and parameter shapes
 * (transfer learning: e.g. fashion-gap's first convolutions from fashion-vgg). The shapes are read
 * off a throwaway build of `spec`, so they follow the model's own shape inference.
 */
function matchingWeights(gpu: Gpu, spec: ModelSpec, bytes: Uint8Array, file: string): { weights: Weights; layers: string[] } {
  const tensors = parseSafetensors(bytes, file).tensors;
  const weights: Weights = {};
  const layers: string[] = [];
  const probe = modelFromSpec(gpu, spec);
  try {
    for (const layer of probe.layers) {
      if (!layer.params.size) continue;
      const found = [...layer.params].map(([key, param]) => {
        const t = tensors.get(`${layer.name}.${key}`);
        const same = t && t.shape.length === param.shape.length && t.shape.every((d, i) => d === param.shape[i]);
        return same ? ([key, { data: t.data, shape: t.shape }] as const) : null;
      });
      if (found.every((f) => f)) {
        weights[layer.name] = Object.fromEntries(found as [string, { data: Float32Array; shape: number[] }][]);
        layers.push(layer.name);
      }
    }
  } finally {
    probe.dispose();
  }
  if (!layers.length) throw new ArgumentError(`--init: ${file} has no layer with the name and shapes of one of '${spec.name}'`);
  return { weights, layers };
}

/** The bytes of a file named by a command-line option, or one clear line saying it cannot be read. */
async function readOptionFile(option: string, file: string): Promise<Uint8Array> {
  try {
    return readModelFile(file); // a regular file only, within maxModelBytes
  } catch (err) {
    throw new ArgumentError(`${option}: cannot read ${file} (${fileProblem(err)})`);
  }
}

/**
 * Writes bytes beside the target and renames: an interrupted run never leaves a half-written file,
 * and a failed write removes what it had written.
 */
async function writeAtomically(out: string, bytes: Uint8Array): Promise<void> {
  try {
    makeDirectory(dirname(out));
    writeFileAtomic(out, bytes); // an exclusively created temporary file, renamed over `out`
  } catch (err) {
    throw new ArgumentError(`cannot write ${out} (${fileProblem(err)})`);
  }
  console.log(`wrote ${out} (${(bytes.length / 1024).toFixed(0)} KiB)`);
}

const percent = (v: number) => `${(v * 100).toFixed(1)}%`;

/** A new model: seeded, with the layers `--init` names taken from that file (listed in `initialised`). */
async function freshModel(gpu: Gpu, o: TrainCommandOptions, spec: ModelSpec): Promise<{ model: Model; initialised: string[] }> {
  if (!o.init) return { model: modelFromSpec(gpu, spec, undefined, { seed: o.seed }), initialised: [] };
  const { weights, layers } = matchingWeights(gpu, spec, await readOptionFile('--init', o.init), o.init);
  console.log(`initialised ${layers.join(', ')} from ${o.init}; the other layers seeded`);
  return { model: modelFromSpec(gpu, spec, weights, { seed: o.seed, allowMissing: true }), initialised: layers };
}

/**
 * The layers to keep as they are: `--freeze`'s, or on `--resume` the checkpoint's unless
 * `--freeze` says otherwise (`--freeze none` trains every layer). A fresh model may freeze only
 * layers `--init` filled: frozen seeded weights would stay random. Checked against the model; on
 * an error the model is disposed.
 */
function frozenLayers(model: Model, o: TrainCommandOptions, context: { initialised?: string[]; meta?: Record<string, string> }): string[] {
  let frozen = o.freeze ?? (context.meta?.frozen ? context.meta.frozen.split(',') : []);
  if (frozen.length === 1 && frozen[0] === 'none') frozen = [];
  try {
    model.parameters({ frozen });
    if (!o.resume) {
      const random = frozen.filter((l) => !context.initialised?.includes(l));
      if (random.length) {
        throw new ArgumentError(`cannot freeze ${random.join(', ')}: ${o.init ? `${o.init} did not provide ${random.length > 1 ? 'them' : 'it'}` : 'no --init file provides it'}, and frozen seeded weights would stay random`);
      }
    }
  } catch (e) {
    model.dispose();
    throw new ArgumentError(`--freeze: ${(e as Error).message}`);
  }
  if (frozen.length) console.log(`frozen (not trained): ${frozen.join(', ')}`);
  return frozen;
}

/** The model and the epochs done of a checkpoint this command wrote (`--resume`). */
async function checkpoint(gpu: Gpu, o: TrainCommandOptions, spec: ModelSpec): Promise<{ model: Model; startEpoch: number; meta: Record<string, string> }> {
  const file = o.resume!;
  const bytes = await readOptionFile('--resume', file);
  const meta = parseSafetensors(bytes, file).metadata;
  const done = /^(\d+) of \d+$/.exec(meta.epochs ?? '');
  if (meta.model !== o.model || !done) throw new ArgumentError(`--resume: ${file} is not a checkpoint of '${o.model}' written by this command`);
  const startEpoch = Number(done[1]);
  if (startEpoch >= o.epochs) throw new ArgumentError(`--resume: ${file} already has ${startEpoch} epochs; ask for more with --epochs`);
  return { model: modelFromSafetensors(gpu, bytes, spec, file), startEpoch, meta };
}

/**
 * The model a run starts from (a checkpoint with --resume, or a fresh one, with --init's layers),
 * the layers it keeps frozen, and what the new checkpoints record of where it came from: the
 * --init file, carried over from a resumed checkpoint.
 */
interface StartingPoint {
  model: Model;
  /** Epochs the checkpoint had done (0 for a fresh model). */
  startEpoch: number;
  frozen: string[];
  /** The resumed checkpoint's metadata ({} for a fresh model). */
  meta: Record<string, string>;
  /** Where the weights came from, for the new checkpoints (`init`). */
  history: Record<string, string>;
}

async function startingPoint(gpu: Gpu, o: TrainCommandOptions, spec: ModelSpec): Promise<StartingPoint> {
  if (o.resume && o.init) throw new ArgumentError('--init and --resume exclude each other: a checkpoint already has all its layers');
  if (o.resume) {
    const { model, startEpoch, meta } = await checkpoint(gpu, o, spec);
    const frozen = frozenLayers(model, o, { meta });
    const history: Record<string, string> = meta.init ? { init: meta.init } : {};
    return { model, startEpoch, frozen, meta, history };
  }
  const { model, initialised } = await freshModel(gpu, o, spec);
  const frozen = frozenLayers(model, o, { initialised });
  const history: Record<string, string> = o.init ? { init: o.init } : {};
  return { model, startEpoch: 0, frozen, meta: {}, history };
}

/** The run's schedule, for its first line: "3 epoch(s), batch 64, Adam lr 0.001 ×0.8/epoch, seed 1; resuming …". */
function scheduleText(o: TrainCommandOptions, startEpoch: number): string {
  return (
    `${o.epochs} epoch(s), batch ${o.batchSize}, Adam lr ${o.lr}` +
    (o.lrDecay !== 1 ? ` ×${o.lrDecay}/epoch` : '') +
    `, seed ${o.seed}` +
    (startEpoch ? `; resuming after epoch ${startEpoch} from ${o.resume}` : '')
  );
}

/**
 * What every checkpoint records of the run that wrote it (its settings, origin, frozen layers,
 * time and adapter); each command adds its own measurements.
 */
function runMetadata(o: TrainCommandOptions, start: StartingPoint, epoch: number, startedAt: number, gpu: Gpu): Record<string, string> {
  return {
    model: o.model,
    seed: String(o.seed),
    epochs: `${epoch} of ${o.epochs}`,
    batchSize: String(o.batchSize),
    lr: String(o.lr),
    lrDecay: String(o.lrDecay),
    ...(start.startEpoch ? { resumedAfterEpoch: String(start.startEpoch) } : {}),
    ...start.history,
    ...(start.frozen.length ? { frozen: start.frozen.join(',') } : {}),
    trainingSeconds: String(Math.round((Date.now() - startedAt) / 1000)),
    adapter: gpu.adapter.name,
    date: new Date().toISOString(),
  };
}

export async function trainCommand(o: TrainCommandOptions): Promise<void> {
  const spec = BUNDLED_MODELS[o.model];
  if (!spec) throw new ArgumentError(`no bundled architecture '${o.model}'; choose one of ${Object.keys(BUNDLED_MODELS).join(', ')}`);
  // Checked now, not after the first epoch.
  const out = outputFile('--out', o.out ?? fileURLToPath(bundledWeightsUrl(o.model)));
  if (o.model === 'fashion-detector') return trainDetectorCommand(o, out);
  const trainSet = loadFashionMnist('train', undefined, { limit: o.limit });
  const testSet = loadFashionMnist('test', undefined, { limit: o.evalLimit });
  const gpu = await initGpu({ log: (m) => console.log(m) });
  try {
    const start = await startingPoint(gpu, o, spec);
    const { model, startEpoch, frozen } = start;
    const loader = new DataLoader(gpu, {
      images: trainSet.images,
      labels: trainSet.labels,
      sampleShape: spec.input,
      batchSize: o.batchSize,
      seed: o.seed,
    });
    // A resumed run continues the learning-rate schedule (Adam's moment estimates start afresh).
    const optimizer = new Adam({ lr: o.lr * o.lrDecay ** startEpoch });
    console.log(`training ${o.model} on ${trainSet.count} images: ${scheduleText(o, startEpoch)}`);
    const started = Date.now();
    // After every epoch: measure, and save a checkpoint, so a long run that is stopped keeps its
    // last complete epoch (with its accuracy and the exact settings in the file's metadata).
    await train(model, loader, {
      epochs: o.epochs,
      startEpoch,
      optimizer,
      frozen,
      log: (line) => console.log(line),
      onEpochEnd: async ({ epoch }) => {
        const accuracy = await evaluate(model, testSet.images, testSet.labels, { sampleShape: spec.input });
        console.log(`epoch ${epoch}: test accuracy ${(accuracy * 100).toFixed(2)}% on ${testSet.count} test images`);
        const bytes = await model.toSafetensors({
          ...runMetadata(o, start, epoch, started, gpu),
          trainImages: String(trainSet.count),
          testAccuracy: accuracy.toFixed(4),
          testImages: String(testSet.count),
        });
        await writeAtomically(out, bytes);
        optimizer.lr *= o.lrDecay;
      },
    });
    optimizer.dispose();
    model.dispose();
  } finally {
    gpu.destroy();
  }
}

async function trainDetectorCommand(o: TrainCommandOptions, out: string): Promise<void> {
  const trainSet = loadFashionMnist('train', undefined, { limit: o.limit });
  const testSet = loadFashionMnist('test');
  const scenesPerEpoch = o.scenes ?? 20000;
  const testScenes = Array.from({ length: o.evalLimit ?? 500 }, (_, i) => heldOutScene(testSet, i));
  const gpu = await initGpu({ log: (m) => console.log(m) });
  try {
    const start = await startingPoint(gpu, o, FASHION_DETECTOR);
    const { model, startEpoch, frozen, meta } = start;
    // The scene stream continues where the checkpoint stopped only with the same epoch length.
    if (o.resume && meta.scenesPerEpoch !== String(scenesPerEpoch)) {
      model.dispose();
      throw new ArgumentError(`--resume: ${o.resume} was trained on ${meta.scenesPerEpoch} scenes per epoch; pass --scenes ${meta.scenesPerEpoch}`);
    }
    const optimizer = new Adam({ lr: o.lr * o.lrDecay ** startEpoch });
    console.log(`training fashion-detector on ${scenesPerEpoch} synthetic scenes per epoch: ${scheduleText(o, startEpoch)}`);
    const started = Date.now();
    await trainDetector(model, {
      source: trainSet,
      scenes: scenesPerEpoch,
      epochs: o.epochs,
      startEpoch,
      batchSize: o.batchSize,
      optimizer,
      seed: o.seed,
      frozen,
      log: (line) => console.log(line),
      onEpochEnd: async (epoch) => {
        const { map, top1Map } = await evaluateDetector(model, testScenes);
        console.log(`epoch ${epoch}: mAP@0.5 ${percent(map)} (${percent(top1Map)} counting each box for its top class only) on ${testScenes.length} held-out scenes`);
        await writeAtomically(
          out,
          await model.toSafetensors({
            ...runMetadata(o, start, epoch, started, gpu),
            scenesPerEpoch: String(scenesPerEpoch),
            testMap50: map.toFixed(4),
            testMap50Top1: top1Map.toFixed(4),
            testScenes: String(testScenes.length),
          }),
        );
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


/** What the commands need of a model: ours (Model) or an imported graph (TF.js graph, ONNX). */
export type LoadedModel = AnyModel;

/**
 * Loads a bundled model by name, a .safetensors file written by `train`, a TF.js model.json or an
 * ONNX file (`options`: see LoadModelOptions).
 */
export async function loadModelArgument(gpu: Gpu, name: string, options: Omit<LoadModelOptions, 'classNames'> = {}): Promise<LoadedModel> {
  if (BUNDLED_MODELS[name] && !options.normalize && !options.inputShape) return loadModel(gpu, name);
  if (name.endsWith('.json') || name.endsWith('.onnx')) {
    if (!existsSync(name)) throw new ArgumentError(`cannot read ${name}: no such file`);
    if (statSync(name).isDirectory()) throw new ArgumentError(`cannot read ${name}: it is a directory`);
    const classNames = GRAPH_MODEL_CLASSES.get(basename(name));
    return loadModel(gpu, name, { ...options, ...(classNames ? { classNames: [...classNames] } : {}) });
  }
  if (!name.endsWith('.safetensors')) {
    throw new ArgumentError(`'${name}' is neither a bundled model (${Object.keys(BUNDLED_MODELS).join(', ')}), a .safetensors file, a TF.js model.json nor an ONNX file`);
  }
  if (options.normalize || options.inputShape) throw new ArgumentError('--normalize and --input-shape apply to imported graphs (ONNX, TF.js)');
  let bytes: Uint8Array;
  try {
    bytes = readModelFile(name); // a regular file only, within maxModelBytes
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') throw new ArgumentError(`cannot read ${name}: ${fileProblem(e)}`);
    throw e;
  }
  return modelFromSafetensors(gpu, bytes, undefined, name);
}

export async function evaluateCommand(o: EvaluateCommandOptions): Promise<void> {
  const testSet = loadFashionMnist('test', undefined, { limit: o.limit });
  const gpu = await initGpu();
  try {
    const model = await loadModelArgument(gpu, o.model);
    if (!(model instanceof Model)) throw new ArgumentError(`evaluate measures Fashion-MNIST models; '${o.model}' is an imported graph`);
    if (model.outputShape.length !== 1) {
      // A detector: mAP@0.5 on the held-out scenes the train command reports.
      const testImages = loadFashionMnist('test');
      const scenes = Array.from({ length: o.limit ?? 500 }, (_, i) => heldOutScene(testImages, i));
      console.log(`evaluating ${o.model} on ${scenes.length} held-out scenes …`);
      const { map, top1Map } = await evaluateDetector(model, scenes);
      console.log(`${o.model}: mAP@0.5 ${percent(map)} (${percent(top1Map)} counting each box for its top class only) on ${scenes.length} held-out scenes (${gpu.adapter.name})`);
      model.dispose();
      return;
    }
    console.log(`evaluating ${o.model} on ${testSet.count} test images …`);
    const accuracy = await evaluate(model, testSet.images, testSet.labels, { sampleShape: [...model.inputShape] });
    console.log(`${o.model}: test accuracy ${(accuracy * 100).toFixed(2)}% on ${testSet.count} images (${gpu.adapter.name})`);
    model.dispose();
  } finally {
    gpu.destroy();
  }
}
