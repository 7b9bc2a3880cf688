/**
 * `saliency detect` and `saliency drise`: run a detector (the bundled one, a .safetensors grid
 * detector, or an imported CenterNet), and explain one of its detections.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CENTERNET_OUTPUTS, COCO_CLASSES, centernetDetect } from '../nets/centernet.js';
import { loadTfjsGraphModel, type TfjsGraphModel } from '../nets/tfjs-graph.js';
import { detect, detectorGeometry, heldOutScene } from '../nets/detector.js';
import { FASHION_CLASSES } from '../nets/classes.js';
import { loadFashionMnist } from '../nets/idx.js';
import { Model } from '../nets/model.js';
import { ArgumentError } from '../runtime/errors.js';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import { resizeRgba, type RgbaImage } from '../saliency/colormaps.js';
import { drise, type Detection } from '../saliency/drise.js';
import { drawBox, drawText, imageToTensorData, readImage, writePng } from '../saliency/image.js';
import { renderOverlay } from '../saliency/render.js';
import { loadInput } from './explain.js';
import { inputToRgba } from '../saliency/input.js';
import { checkOutputDirectory, gpuOptions, lazyOutputDirectory, outputDirectory } from './output.js';
import { progressLines } from './progress.js';
import { formatRate } from '../runtime/progress.js';
import { loadModelArgument } from './train.js';

export interface DetectCommandOptions {
  image: string;
  detector: string;
  out: string;
  threshold: number;
  size: number;
}

/**
 * A detector the commands can run: our grid detector (bundled name or .safetensors), or an imported
 * CenterNet graph (model.json; its post-processing runs in TypeScript, see nets/centernet.ts).
 */
interface CliDetector {
  classNames: readonly string[] | undefined;
  /**
   * The image as the detector's input [1, C, H, W] (resized to the detector's size, whatever the
   * photo's aspect ratio), and the photo itself, whose pixels the results are given in.
   */
  input(path: string): { x: Tensor; photo: RgbaImage };
  run(images: Tensor, threshold: number): Promise<Detection[][]>;
  dispose(): void;
}

async function loadDetector(gpu: Gpu, arg: string): Promise<CliDetector> {
  if (arg.endsWith('.json')) {
    if (!existsSync(arg)) throw new ArgumentError(`cannot read ${arg}: no such file`);
    if (statSync(arg).isDirectory()) throw new ArgumentError(`cannot read ${arg}: it is a directory`);
    let model: TfjsGraphModel;
    try {
      model = await loadTfjsGraphModel(gpu, arg, { outputs: [...CENTERNET_OUTPUTS] });
    } catch (e) {
      if (e instanceof ArgumentError && /there is no node named/.test(e.message)) {
        throw new ArgumentError(`--detector ${arg}: not a CenterNet graph (it has no ${CENTERNET_OUTPUTS.join(' / ')} nodes)`);
      }
      throw e;
    }
    const [, height, width] = model.inputShape as [number, number, number];
    return {
      classNames: COCO_CLASSES,
      input: (path) => {
        const photo = readImage(path);
        const data = imageToTensorData(photo, { channels: 3, width, height });
        // human's CenterNet takes RGB in 0..255.
        return { x: tensor(gpu, data.map((v) => v * 255), [1, 3, height, width]), photo };
      },
      run: (images, threshold) => centernetDetect(model, images, { minScore: threshold }),
      dispose: () => model.dispose(),
    };
  }
  const model = await loadModelArgument(gpu, arg);
  if (!(model instanceof Model)) throw new ArgumentError(`--detector must be a grid detector of ours (fashion-detector or a .safetensors file) or a CenterNet model.json; got '${arg}'`);
  if (model.outputShape.length !== 3) {
    throw new ArgumentError(`'${arg}' is not a detector (its output per image is [${model.outputShape.join(', ')}]; a grid detector's is [5 + classes, g, g]); for a classifier use 'saliency explain'`);
  }
  detectorGeometry(model);
  const [channels, height, width] = model.inputShape as [number, number, number];
  if (channels !== 1) throw new ArgumentError(`detector '${model.name}' takes ${channels} channels; only grey (1-channel) grid detectors are supported here`);
  return {
    classNames: model.classNames,
    input: (path) => {
      const { data, image } = loadInput(model, path);
      return { x: tensor(gpu, data, [1, 1, height, width]), photo: image };
    },
    run: (images, threshold) => detect(model, images, { threshold }),
    dispose: () => model.dispose(),
  };
}

function describe(d: Detection, classes: readonly string[] | undefined): { label: number; text: string } {
  const label = d.scores.indexOf(Math.max(...d.scores));
  const name = classes?.[label] ?? `class ${label}`;
  return { label, text: `${name} ${((d.objectness ?? 1) * d.scores[label]! * 100).toFixed(0)}%` };
}

/**
 * A detection's box in the photo's own pixels: the detector saw the photo resized to its input
 * (inputWidth × inputHeight, aspect ratio not kept), so each axis scales back by its own factor.
 */
export function toPhotoBox(box: readonly number[], input: readonly [number, number], photo: { width: number; height: number }): [number, number, number, number] {
  const sx = photo.width / input[0];
  const sy = photo.height / input[1];
  return [box[0]! * sx, box[1]! * sy, box[2]! * sx, box[3]! * sy];
}

/** Width and height of a picture of the photo whose longer side is `size` pixels (the aspect ratio kept). */
export function pictureSize(photo: { width: number; height: number }, size: number): [number, number] {
  const k = size / Math.max(photo.width, photo.height);
  return [Math.max(1, Math.round(photo.width * k)), Math.max(1, Math.round(photo.height * k))];
}

/** Draws detections (boxes in photo pixels) on the photo, its longer side `size`, numbered as the CLI lists them. */
function drawDetections(photo: RgbaImage, dets: Detection[], size: number, classes: readonly string[] | undefined): RgbaImage {
  const [w, h] = pictureSize(photo, size);
  const img = resizeRgba(photo, w, h, 'bilinear');
  const k = w / photo.width;
  dets.forEach((d, i) => {
    const box = d.box.map((v) => v * k);
    drawBox(img, box, [255, 64, 64, 255], 2);
    drawText(img, `${i} ${describe(d, classes).text}`, Math.max(0, box[0]! + 3), Math.max(0, box[1]! + 3), { scale: 1, color: [255, 255, 0, 255] });
  });
  return img;
}

/** The detections with their boxes in the photo's pixels, clipped to the photo (for printing and drawing). */
function inPhotoPixels(dets: Detection[], x: Tensor, photo: RgbaImage): Detection[] {
  const input: [number, number] = [x.shape[3]!, x.shape[2]!];
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  return dets.map((d) => {
    const [x1, y1, x2, y2] = toPhotoBox(d.box, input, photo);
    return { ...d, box: [clip(x1, photo.width), clip(y1, photo.height), clip(x2, photo.width), clip(y2, photo.height)] };
  });
}

export async function detectCommand(o: DetectCommandOptions): Promise<void> {
  if (o.image === '') throw new ArgumentError('--image must name a PNG or JPEG file');
  checkOutputDirectory('--out', o.out); // before the detector is loaded and run
  const gpu = await initGpu();
  try {
    const detector = await loadDetector(gpu, o.detector);
    const { x, photo } = detector.input(o.image);
    const dets = inPhotoPixels((await detector.run(x, o.threshold))[0]!, x, photo);
    console.log(`detections in ${o.image}'s pixels (${photo.width}×${photo.height}), boxes as [x1, y1, x2, y2] inside the photo:`);
    dets.forEach((d, i) => console.log(`  ${i}: ${describe(d, detector.classNames).text}  box [${d.box.map((v) => v.toFixed(1)).join(', ')}]`));
    if (!dets.length) console.log('  no detections above the threshold');
    const file = join(outputDirectory('--out', o.out), 'detections.png');
    writePng(file, drawDetections(photo, dets, o.size, detector.classNames));
    console.log(`${dets.length} detection(s) → ${file}`);
    x.dispose();
    detector.dispose();
  } finally {
    gpu.destroy();
  }
}

export interface DriseCommandOptions extends DetectCommandOptions {
  target: number;
  masks: number;
  grid: number;
  p: number;
  seed: number;
  batchSize: number | 'auto';
  /** GPU memory budget in MiB (default: initGpu's). */
  memoryBudget?: number;
}

export async function driseCommand(o: DriseCommandOptions): Promise<void> {
  if (o.image === '') throw new ArgumentError('--image must name a PNG or JPEG file');
  checkOutputDirectory('--out', o.out); // before the detector is loaded and run
  const gpu = await initGpu(gpuOptions(o.memoryBudget));
  try {
    const detector = await loadDetector(gpu, o.detector);
    const { x, photo } = detector.input(o.image);
    const [dets] = await detector.run(x, o.threshold);
    const target = dets![o.target];
    if (!target) {
      throw new ArgumentError(
        dets!.length
          ? `--target ${o.target}: the detector found ${dets!.length} detection(s) (0..${dets!.length - 1}); run 'saliency detect' to list them`
          : `--target ${o.target}: the detector found no detections at --threshold ${o.threshold}; try a lower --threshold`,
      );
    }
    const outDir = lazyOutputDirectory('--out', o.out);
    const [shown] = inPhotoPixels([target], x, photo);
    console.log(`explaining detection ${o.target}: ${describe(target, detector.classNames).text}  box [${shown!.box.map((v) => v.toFixed(1)).join(', ')}]`);
    // Every proposal counts in D-RISE's weights, so the masked images are decoded without a threshold.
    const map = await drise((images) => detector.run(images, 0), x, {
      target,
      masks: o.masks,
      gridSize: o.grid,
      p: o.p,
      seed: o.seed,
      batchSize: o.batchSize,
      onProgress: progressLines({ label: '  drise:', unit: 'mask' }),
    });
    const raw = { data: await map.read(), shape: [...map.shape] };
    // The map is in the detector's input coordinates: stretched back over the photo's own shape.
    const [w, h] = pictureSize(photo, o.size);
    const image = renderOverlay(raw, photo, { kind: 'cam', width: w, height: h });
    drawBox(image, shown!.box.map((v) => (v * w) / photo.width), [255, 64, 64, 255], 2);
    const file = join(outDir(), `drise-${o.target}.png`);
    writePng(file, image);
    console.log(`${o.masks} masks in ${map.seconds.toFixed(1)} s (${formatRate(o.masks, map.seconds, 'mask')}) → ${file}`);
    map.dispose();
    x.dispose();
    detector.dispose();
  } finally {
    gpu.destroy();
  }
}

export interface SceneCommandOptions {
  index: number;
  /** Directory for scene-<index>.png. */
  out: string;
}

/**
 * `saliency scene`: writes held-out scene `index` (one of those the detector's mAP is measured on,
 * made from the Fashion-MNIST test images) as a 96×96 PNG, and lists its objects, so that
 * `detect` and `drise` can be tried on a scene whose answer is known.
 */
export function sceneCommand(o: SceneCommandOptions): void {
  const scene = heldOutScene(loadFashionMnist('test'), o.index);
  const side = Math.round(Math.sqrt(scene.image.length));
  const file = join(outputDirectory('--out', o.out), `scene-${o.index}.png`);
  writePng(file, inputToRgba(scene.image, 1, side, side));
  console.log(`held-out scene ${o.index}: ${scene.boxes.length} object(s) → ${file}`);
  scene.boxes.forEach((box, k) => console.log(`  ${FASHION_CLASSES[scene.labels[k]!]}  box [${box.join(', ')}]`));
}
