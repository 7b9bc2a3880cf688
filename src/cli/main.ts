#!/usr/bin/env node
/** The `saliency` command line. */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { SaliencyError } from '../runtime/errors.js';
import { limitsFromEnvironment } from '../runtime/limits.js';
import { doctor } from './doctor.js';
import { evaluateCommand, trainCommand } from './train.js';
import { METHODS, explainCommand, featuresCommand, sampleCommand } from './explain.js';
import { METRIC_METHODS } from '../saliency/metrics/methods.js';
import { decimal } from './parse.js';
import { detectCommand, driseCommand, sceneCommand } from './detect.js';
import { registerBatchCommands } from './batch/command.js';
import { exitCleanlyOnSignals, exitWithParent, runFiltered, runsItself } from './quiet.js';
import { METRIC_NAMES, metricsCommand } from './metrics.js';
import { addMetricOptions } from './metric-options.js';
import { addModelOptions, registerLayersCommand } from './models.js';

const program = new Command();
program
  .name('saliency')
  .description('Saliency maps for convolutional networks, computed on the GPU through WebGPU.')
  .showHelpAfterError('(run with --help for usage)')
  .option('--verbose', "also show the GPU driver's own messages (Dawn, Vulkan) on stderr")
  .exitOverride()
  // Set before the commands are added, so that every command inherits it.
  .configureOutput({ outputError: (text, write) => write(cutArguments(text)) });

/** Sides of the rendered images: larger ones would take gigabytes (an overview holds up to 9 tiles). */
const MAX_SIZE = 2048;

/**
 * `message` with every long command-line argument in it cut short, and any remaining run of more
 * than 300 characters without a space cut too: a 100 KB argument is not echoed back in full.
 */
function cutArguments(message: string, argv: readonly string[] = process.argv): string {
  let out = message;
  for (const arg of new Set(argv.filter((a) => a.length > 200))) {
    const cut = `${arg.slice(0, 100)}… (${arg.length} characters)`;
    out = out.split(arg).join(cut);
    // Commander quotes option names without their value ('--xxx=…'), and paths get resolved.
    const bare = arg.replace(/^-+/, '');
    if (bare.length > 200) out = out.split(bare).join(`${bare.slice(0, 100)}… (${bare.length} characters)`);
  }
  return out.replace(/\S{301,}/g, (run) => `${run.slice(0, 100)}… (${run.length} characters)`);
}

program
  .command('doctor')
  .description('check that WebGPU works here: print the adapter and its limits, and run a small self-check of the kernels')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { json?: boolean }) => {
    await doctor({ json: !!opts.json });
  });

/** An option's value as a number: a plain decimal, else NaN (see `decimal`). */
const toNumber = decimal;
const positiveInt = (name: string) => (v: string) => {
  const n = toNumber(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};
const batchSizeArg = (name: string) => (v: string) => {
  if (v === 'auto') return 'auto';
  const n = toNumber(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be 'auto' or a positive integer`);
  return n;
};
const positiveIntOrZero = (name: string) => (v: string) => {
  const n = toNumber(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be an integer ≥ 0`);
  return n;
};
const nonNegativeNumber = (name: string) => (v: string) => {
  const n = toNumber(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number ≥ 0`);
  return n;
};
const sizeOption = (name: string) => (v: string) => {
  const n = toNumber(v);
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SIZE) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${MAX_SIZE}`);
  return n;
};
const positiveNumber = (name: string) => (v: string) => {
  const n = toNumber(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

program
  .command('train')
  .description('train a bundled architecture on Fashion-MNIST (Debian package dataset-fashion-mnist) and write its weights')
  .requiredOption('--model <name>', 'architecture: fashion-vgg, fashion-gap or fashion-detector')
  .option('--scenes <n>', 'fashion-detector: synthetic scenes per epoch', positiveInt('--scenes'), 20000)
  .option('--epochs <n>', 'passes over the training set', positiveInt('--epochs'), 3)
  .option('--batch-size <n>', 'images per step', positiveInt('--batch-size'), 64)
  .option('--lr <rate>', 'Adam learning rate', positiveNumber('--lr'), 0.001)
  .option('--lr-decay <factor>', 'multiply the learning rate by this after each epoch', positiveNumber('--lr-decay'), 1)
  .option('--seed <n>', 'seed of initialisation, shuffling and dropout', positiveIntOrZero('--seed'), 1)
  .option('--limit <n>', 'train on the first N images only', positiveInt('--limit'))
  .option('--eval-limit <n>', 'evaluate on the first N test images (fashion-detector: N held-out scenes) only', positiveInt('--eval-limit'))
  .option('--out <file>', 'where to write the .safetensors weights (default: models/<name>.safetensors)')
  .option('--resume <file>', 'continue from a checkpoint this command wrote (its epochs count towards --epochs)')
  .option('--init <file>', 'start from the layers of this .safetensors file that have the same names and shapes (e.g. fashion-gap or fashion-detector from fashion-vgg)')
  .option('--freeze <layers>', "comma-separated layers to keep as they are, e.g. conv1,conv2 after --init ('none': train all; default on --resume: the checkpoint's)", (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .action(async (opts) => {
    await trainCommand(opts);
  });

program
  .command('evaluate')
  .description("measure a model's accuracy on the Fashion-MNIST test set (a detector: mAP@0.5 on the held-out scenes)")
  .requiredOption('--model <name|file>', 'a bundled model name or a .safetensors file')
  .option('--limit <n>', 'use the first N test images only (a detector: the first N held-out scenes)', positiveInt('--limit'))
  .action(async (opts) => {
    await evaluateCommand(opts);
  });

addModelOptions(program
  .command('explain')
  .description('explain what a model looks at in an image: one PNG per method, plus overview.png side by side')
  .requiredOption('--model <name|file>', 'a bundled model (fashion-vgg, fashion-gap), a .safetensors file, a TF.js model.json (graph or layers) or an ONNX file')
  .requiredOption('--image <file>', 'a PNG or JPEG image; it is resized to the model input')
  .option('--crop <x,y,w,h>', 'explain only this region of the image (pixels), e.g. a face')
  .option('--method <name|all>', `one of ${METHODS.join(', ')}; a comma-separated list; or all`, 'all')
  .option('--target <index|top>', 'the class to explain: an index, or top for the predicted class (a model with one sigmoid output: 0 its class, 1 the other)', 'top')
  .option('--layer <name>', 'layer for Grad-CAM and Guided Grad-CAM (default: the last conv/ReLU layer with a spatial map)')
  .option('--out <dir>', 'directory for the PNG files', 'out')
  .option('--samples <n>', 'SmoothGrad: noisy samples', positiveInt('--samples'), 50)
  .option('--noise-level <f>', 'SmoothGrad: noise σ as a fraction of the value range (0 gives the vanilla gradient)', nonNegativeNumber('--noise-level'), 0.15)
  .option('--seed <n>', 'SmoothGrad: noise seed', positiveIntOrZero('--seed'), 0)
  .option('--size <px>', 'side of the rendered images in pixels', sizeOption('--size'), 224)
  .option('--raw', 'also write each raw map (signed, not normalised, the shape the method returns) as <method>.npy next to its PNG (NumPy float32)')
  .option('--trace', 'print every forward and backward pass step by step (layer, kernels, rule, gradient statistics), the ReLU rules of the methods side by side, and write trace.json')
  .option('--memory-budget <MiB>', 'GPU memory budget in MiB; SmoothGrad batches its samples to fit (default: 2048, or a quarter of RAM on a software adapter)', positiveInt('--memory-budget')))
  .action(async (opts) => {
    await explainCommand(opts);
  });

addModelOptions(program
  .command('features')
  .description("DeconvNet's layer picture: the most active feature maps of a layer, each projected back to pixels")
  .requiredOption('--model <name|file>', 'a bundled model, a .safetensors file, a TF.js model.json (graph or layers) or an ONNX file')
  .requiredOption('--image <file>', 'a PNG or JPEG image')
  .requiredOption('--layer <name>', 'the layer whose feature maps to show')
  .option('--top <n>', 'how many feature maps', positiveInt('--top'), 9)
  .option('--out <dir>', 'directory for the PNG file', 'out')
  .option('--size <px>', 'side of each tile in pixels', sizeOption('--size'), 160))
  .action(async (opts) => {
    await featuresCommand(opts);
  });

const metricsCommandLine = program
  .command('metrics')
  .description(
    "measure each method's maps (docs/metrics.md): deletion, insertion, ROAD, Average Drop, max-sensitivity, model randomisation, pointing game; " +
      'prints a table (method × metric, mean ± std over the images, a seeded random map as the control row) and writes metrics.json, curves.png and randomisation.png',
  )
  .requiredOption('--model <name|file>', 'a bundled model (fashion-vgg, fashion-gap), a .safetensors file, or a TF.js model.json (graph or layers)')
  .requiredOption('--image <files...>', 'PNG or JPEG images, or folders of them (each resized to the model input)')
  .option('--crop <x,y,w,h>', 'use only this region of each image (pixels), e.g. a face')
  .option('--method <name|all>', `one of ${METRIC_METHODS.join(', ')}; a comma-separated list; or all`, 'all')
  .option('--metric <name|all>', `one of ${METRIC_NAMES.join(', ')}; a comma-separated list; or all`, 'all')
  .option('--target <index|top>', "the class the maps explain: an index, or top for each image's predicted class", 'top')
  .option('--layer <name>', 'layer for Grad-CAM and Guided Grad-CAM (default: the last conv/ReLU layer with a spatial map)')
  .option('--samples <n>', 'SmoothGrad: noisy samples', positiveInt('--samples'), 50)
  .option('--noise-level <f>', 'SmoothGrad: noise σ as a fraction of the value range', nonNegativeNumber('--noise-level'), 0.15)
  .option('--seed <n>', 'seed of everything random: SmoothGrad noise, the control map, ROAD noise, max-sensitivity perturbations, re-initialised weights', positiveIntOrZero('--seed'), 0)
  .option('--batch-size <n|auto>', "images per forward pass and per method call ('auto': as many as fit the GPU memory budget, at most 128; a number too large to fit is split, with a warning)", batchSizeArg('--batch-size'), 'auto')
  .option('--memory-budget <MiB>', 'GPU memory budget in MiB (default: 2048, or a quarter of RAM on a software adapter)', positiveInt('--memory-budget'));
addMetricOptions(metricsCommandLine, "pointing game: the object's box in model-input pixels (edges), or auto: the bounding box of each image's non-zero pixels (an object on black)")
  .option('--out <dir>', 'directory for metrics.json, curves.png and randomisation.png', 'out')
  .action(async (opts) => {
    await metricsCommand(opts);
  });

registerLayersCommand(program);

const probability = (name: string) => (v: string) => {
  const n = toNumber(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a number in [0, 1]`);
  return n;
};

program
  .command('detect')
  .description('run an object detector on an image and write it with the boxes drawn')
  .requiredOption('--image <file>', 'a PNG or JPEG image; it is resized to the detector input')
  .option('--detector <name|file>', 'a bundled detector, a .safetensors grid detector, or a CenterNet model.json (e.g. human\'s centernet.json)', 'fashion-detector')
  .option('--threshold <p>', 'minimum objectness', probability('--threshold'), 0.3)
  .option('--out <dir>', 'directory for detections.png', 'out')
  .option('--size <px>', "longer side of the rendered image in pixels (the photo's aspect ratio is kept)", sizeOption('--size'), 384)
  .action(async (opts) => {
    await detectCommand(opts);
  });

program
  .command('sample')
  .description('write one Fashion-MNIST test image (28×28, from the Debian package) as a PNG for the bundled classifiers, and print its class')
  .option('--index <n>', 'which test image (0–9999)', positiveIntOrZero('--index'), 0)
  .option('--out <dir>', 'directory for fashion-<index>.png', 'out')
  .action((opts) => {
    sampleCommand(opts);
  });

program
  .command('scene')
  .description("write one of the detector's held-out test scenes (Fashion-MNIST test items on a 96×96 canvas) as a PNG, and list its objects")
  .option('--index <n>', 'which held-out scene (the mAP uses 0–499)', positiveIntOrZero('--index'), 0)
  .option('--out <dir>', 'directory for scene-<index>.png', 'out')
  .action((opts) => {
    sceneCommand(opts);
  });

program
  .command('drise')
  .description('D-RISE: which pixels make the detector find one of its detections')
  .requiredOption('--image <file>', 'a PNG or JPEG image')
  .requiredOption('--target <index>', "the detection to explain, as numbered by 'saliency detect'", positiveIntOrZero('--target'))
  .option('--detector <name|file>', 'a bundled detector, a .safetensors grid detector, or a CenterNet model.json (e.g. human\'s centernet.json)', 'fashion-detector')
  .option('--masks <n>', 'number of random masks', positiveInt('--masks'), 5000)
  .option('--grid <s>', 'mask grid cells per side', positiveInt('--grid'), 16)
  .option('--p <p>', 'probability that a grid cell is kept', probability('--p'), 0.5)
  .option('--seed <n>', 'mask seed', positiveIntOrZero('--seed'), 0)
  .option('--batch-size <n|auto>', "masked images per detector call ('auto': as many as fit the GPU memory budget, at most 256; a number too large to fit is split, with a warning)", batchSizeArg('--batch-size'), 'auto')
  .option('--memory-budget <MiB>', 'GPU memory budget in MiB (default: 2048, or a quarter of RAM on a software adapter)', positiveInt('--memory-budget'))
  .option('--threshold <p>', 'minimum objectness of the detections listed', probability('--threshold'), 0.3)
  .option('--out <dir>', 'directory for drise-<index>.png', 'out')
  .option('--size <px>', "longer side of the rendered image in pixels (the photo's aspect ratio is kept)", sizeOption('--size'), 384)
  .action(async (opts) => {
    await driseCommand(opts);
  });

registerBatchCommands(program);

async function main(): Promise<number> {
  try {
    limitsFromEnvironment(process.env); // SALIENCY_MAX_IMAGE_PIXELS and the like (docs/security.md)
    await program.parseAsync(process.argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof SaliencyError) {
      process.stderr.write(`saliency: ${cutArguments(e.message)}\n`);
      return 1;
    }
    process.stderr.write(`saliency: unexpected error: ${(e as Error).stack ?? e}\n`);
    return 2;
  }
}

// Output piped into a reader that stopped (`saliency … | head`): stop quietly, as other tools do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// Dawn keeps the process alive while its GPU object exists: exit explicitly.
exitWithParent();
exitCleanlyOnSignals();
(runsItself() ? main() : runFiltered()).then((code) => process.exit(code));
