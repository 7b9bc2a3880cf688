/** The `batch` and `batch-merge` commands and their options (registered by cli/main.ts). */
import { type Command, InvalidArgumentError } from 'commander';
import { CLASSIFIER_METHOD_NAMES } from '../../saliency/methods.js';
import { BATCH_ALL_METRICS, METRIC_NAMES, addMetricOptions } from '../metric-options.js';
import { decimal, nonNegativeArg, positiveIntArg as positiveInt, wholeNumberArg } from '../parse.js';

export function registerBatchCommands(program: Command): void {
  const batch = program
    .command('batch')
    .description('explain every image of a folder, glob or manifest: raw maps as .npy (or .safetensors), optional PNG overlays, one line per image in results.jsonl; resumable and shardable (see docs/batch.md)')
    .requiredOption('--model <name|file>', 'a bundled model (fashion-vgg, fashion-gap), a .safetensors file, or a TF.js model.json')
    .requiredOption('--input <folder|glob|manifest>', "a folder (every .png/.jpg below it), a quoted glob ('data/**/*.png'), or a manifest: .csv with a header, or .jsonl; columns path, and optionally target, crop (x,y,w,h), id and box (x1,y1,x2,y2 for --metric pointingGame)")
    .option('--method <names>', `comma-separated methods: ${CLASSIFIER_METHOD_NAMES.join(', ')}; or all`, 'gradCam')
    .option('--out <dir>', 'output folder: maps/, results.jsonl (results-<i>.jsonl for shard i), run.json', 'results')
    .option('--target <index|name|top>', "class to explain where the manifest gives none: an index, a class name, or top (the predicted class)", 'top')
    .option('--layer <name>', 'layer for Grad-CAM and Guided Grad-CAM (default: the last conv/ReLU layer with a spatial map)')
    .option('--format <npy|safetensors>', 'file format of the raw maps (float32 [C, H, W]; numpy.load reads .npy)', 'npy')
    .option('--png', 'also write each map as a PNG overlay on the image')
    .option('--size <px>', 'side of the PNG overlays in pixels', positiveInt('--size'), 224)
    .option('--batch-size <n|auto>', "images per GPU batch ('auto': as many as fit the GPU memory budget, at most 64; a number too large to fit is split, with a warning)", (v: string) => (v === 'auto' ? 'auto' : positiveInt('--batch-size')(v)), 'auto')
    .option('--memory-budget <MiB>', 'GPU memory budget in MiB (default: 2048, or a quarter of RAM on a software adapter); the batches, and SmoothGrad\'s noisy samples within them, fit in it', positiveInt('--memory-budget'))
    .option('--top-k <k>', 'how many of the most probable classes each results line lists', positiveInt('--top-k'), 5)
    .option('--shard <i/N|auto|auto/N>', 'do only shard i of N (by a hash of each id); auto: i from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), N from SALIENCY_SHARD_COUNT or auto/N')
    .option('--workers <n>', 'worker threads that decode images and write files (default: CPU cores − 1, at most 4)', positiveInt('--workers'))
    .option('--samples <n>', 'SmoothGrad: noisy samples per image', positiveInt('--samples'), 50)
    .option('--noise-level <f>', 'SmoothGrad: noise σ as a fraction of the value range', nonNegativeArg('--noise-level'), 0.15)
    .option('--seed <n>', 'seed of everything random: SmoothGrad noise; with --metric, ROAD noise, max-sensitivity perturbations, re-initialised weights', wholeNumberArg('--seed'), 0)
    .option('--max-file-size <MiB>', 'refuse image files larger than this (a failed line, not a crash)', (v: string) => {
      const n = decimal(v);
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('--max-file-size must be a positive number of MiB');
      return n;
    }, 64)
    .option(
      '--metric <names|all>',
      `also score each map (docs/metrics.md), into its results line: ${METRIC_NAMES.join(', ')}, comma-separated; ` +
        `all: ${BATCH_ALL_METRICS.join(', ')} (randomisation re-runs each method once per layer: name it to have it; pointingGame only for images with a box)`,
    );
  addMetricOptions(
    batch,
    "pointing game: the box of the images whose manifest row gives none ('box' column, in the image's pixels): x1,y1,x2,y2 in model-input pixels (edges), or auto: the bounding box of each image's non-zero pixels (an object on black)",
  )
    .option('--json', 'print a JSON summary on stdout (counts, images/s, decode, GPU and metric time, metric means); messages go to stderr')
    .action(async (opts) => {
      const { batchCommand } = await import('./run.js'); // its libraries load only for this command
      await batchCommand(opts);
    });

  program
    .command('batch-merge')
    .description('merge the results-<i>.jsonl of a sharded batch run into results.jsonl, checking that every input is there exactly once')
    .argument('<dir>', "the --out folder of the shards' batch runs")
    .option('--json', 'print the merge report as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const { mergeCommand } = await import('./merge.js');
      await mergeCommand(dir, opts);
    });
}
