/**
 * Model options every model command shares: --labels (class names for any model), --normalize
 * (ONNX: per-channel mean/std in front of the model) and --input-shape (graphs with open
 * dimensions), and `saliency layers`.
 */
import type { Command } from 'commander';
import { readRegularFile } from '../runtime/files.js';
import { ArgumentError } from '../runtime/errors.js';
import { initGpu } from '../runtime/gpu.js';
import { parseNormalization, type InputNormalization } from '../nets/normalization.js';
import { checkLabels, imagenetClasses, LABEL_LIMITS, parseLabels } from '../nets/labels.js';
import { listLayers } from '../nets/layers.js';
import { camFeatureLayer, defaultCamLayer } from '../saliency/index.js';
import { decimal } from './parse.js';
import { loadModelArgument, type LoadedModel } from './train.js';

/** --normalize imagenet | m1,m2,m3/s1,s2,s3 | none. */
export const parseNormalize = (v: string | undefined): InputNormalization | undefined => parseNormalization(v, '--normalize');

/** --input-shape C,H,W (positive integers). */
export function parseInputShape(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const dims = v.split(',').map(decimal);
  if (!dims.length || dims.some((d) => !Number.isSafeInteger(d) || d < 1 || d > 1 << 20)) throw new ArgumentError(`--input-shape must be positive integers such as 3,224,224, got '${v.slice(0, 100)}'`);
  return dims;
}

/** --labels file.txt | file.json | imagenet: class names, checked against the model's outputs. */
export async function loadLabels(arg: string | undefined, model: LoadedModel): Promise<readonly string[] | undefined> {
  if (arg === undefined) return undefined;
  const labels = arg === 'imagenet' ? await imagenetClasses() : parseLabels(readRegularFile(arg, { maxBytes: LABEL_LIMITS.maxBytes, what: 'labels file' }), arg);
  const outputs = model.outputShape.reduce((a, b) => a * b, 1);
  checkLabels(labels, outputs, model.name, arg === 'imagenet' ? '--labels imagenet' : `--labels ${arg}`);
  return labels;
}

export interface ModelArguments {
  model: string;
  labels?: string;
  normalize?: string;
  inputShape?: string;
}

/** Loads --model with --normalize and --input-shape, then --labels: the model and its class names. */
export async function loadModelWithArguments(gpu: Parameters<typeof loadModelArgument>[0], o: ModelArguments): Promise<{ model: LoadedModel; classNames: readonly string[] | undefined }> {
  const normalize = parseNormalize(o.normalize);
  const inputShape = parseInputShape(o.inputShape);
  const model = await loadModelArgument(gpu, o.model, { normalize, inputShape });
  try {
    const labels = await loadLabels(o.labels, model);
    return { model, classNames: labels ?? model.classNames };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export interface LayersOptions extends ModelArguments {
  json?: boolean;
}

/** `saliency layers`: every hook point of a model with its op, output shape and weight count. */
export async function layersCommand(o: LayersOptions): Promise<void> {
  const gpu = await initGpu();
  try {
    const { model } = await loadModelWithArguments(gpu, o);
    try {
      const notes = new Map<string, string[]>();
      const note = (name: string | undefined, text: string) => name !== undefined && notes.set(name, [...(notes.get(name) ?? []), text]);
      const quietly = (f: () => string) => {
        try {
          return f();
        } catch {
          return undefined; // the model has no such layer: no note
        }
      };
      note(quietly(() => defaultCamLayer('layers', model)), 'Grad-CAM default');
      note(quietly(() => camFeatureLayer(model)), 'CAM features');
      const logits = 'logitsName' in model ? model.logitsName : undefined;
      if (logits !== undefined && logits !== model.layers[model.layers.length - 1]?.name) note(logits, 'logits');
      const layers = listLayers(model).map((l) => ({ ...l, notes: notes.get(l.name) ?? [] }));
      if (o.json) {
        console.log(JSON.stringify({ model: model.name, input: model.inputShape, output: model.outputShape, layers }, null, 1));
        return;
      }
      const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
      const rows = layers.map((l, i) => [String(i), l.name, l.op, shape(l.outputShape), l.parameters ? String(l.parameters) : '', l.notes.join(', ')]);
      const head = ['#', 'layer (hook point)', 'op', 'output per image', 'weights', ''];
      const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
      const line = (r: string[]) => r.map((c, k) => (k === 0 || k === 4 ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join('  ').trimEnd();
      console.log(`model ${model.name}: input ${shape(model.inputShape)} per image, output ${shape(model.outputShape)}, ${layers.length} layers`);
      console.log(line(head));
      for (const r of rows) console.log(line(r));
      const nodes = layers.filter((l) => l.node !== undefined);
      if (nodes.length) console.log(`(node names, e.g. '${nodes[nodes.length - 1]!.node}', name the same hook points)`);
    } finally {
      model.dispose();
    }
  } finally {
    gpu.destroy();
  }
}

/** Adds --labels, --normalize and --input-shape to a command that takes --model. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('--labels <file|imagenet>', "class names: a .txt file (one per line), a .json list (or index → name object), or 'imagenet' (the 1,000 ImageNet classes)")
    .option('--normalize <imagenet|m,m,m/s,s,s>', "ONNX models: subtract these per-channel means from pixels in [0, 1] and divide by these stds before the model ('imagenet': torchvision's 0.485,0.456,0.406/0.229,0.224,0.225); the maps are then gradients with respect to the pixels")
    .option('--input-shape <C,H,W>', 'the per-image input shape, for imported models that leave dimensions open (e.g. 3,224,224)');
}

/** Registers `saliency layers`. */
export function registerLayersCommand(program: Command): void {
  addModelOptions(
    program
      .command('layers')
      .description('list the layers (hook points) of a model: name, op, output shape per image and weights; names work as --layer and as neuron targets')
      .requiredOption('--model <name|file>', 'a bundled model, a .safetensors file, a TF.js model.json (graph or layers) or an ONNX file')
      .option('--json', 'print the list as JSON'),
  ).action(async (opts: LayersOptions) => {
    await layersCommand(opts);
  });
}
