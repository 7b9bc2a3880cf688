/** `saliency detect` and `saliency drise`: run the bundled detector, and explain one of its detections. */
import { join, resolve } from 'node:path';
import { detect, detectorGeometry } from '../nets/detector.js';
import { Model } from '../nets/model.js';
import { ArgumentError } from '../runtime/errors.js';
import { initGpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import { resizeRgba, type RgbaImage } from '../saliency/colormaps.js';
import { drise, type Detection } from '../saliency/drise.js';
import { drawBox, drawText, imageToTensorData, readImage, writePng } from '../saliency/image.js';
import { renderOverlay } from '../saliency/render.js';
import { loadModelArgument } from './train.js';

export interface DetectCommandOptions {
  image: string;
  detector: string;
  out: string;
  threshold: number;
  size: number;
}

function loadSceneImage(model: Model, path: string): { x: Tensor; view: RgbaImage } {
  const [channels, height, width] = model.inputShape as [number, number, number];
  if (channels !== 1) throw new ArgumentError(`detector '${model.name}' takes ${channels} channels; only grey (1-channel) detectors are supported here`);
  const data = imageToTensorData(readImage(path), { channels: 1, width, height, background: [0, 0, 0] });
  const view = { width, height, data: Uint8ClampedArray.from({ length: width * height * 4 }, (_, i) => (i % 4 === 3 ? 255 : data[Math.floor(i / 4)]! * 255)) };
  return { x: tensor(model.gpu, data, [1, 1, height, width]), view };
}

function describe(d: Detection, classes: readonly string[] | undefined): { label: number; text: string } {
  const label = d.scores.indexOf(Math.max(...d.scores));
  const name = classes?.[label] ?? `class ${label}`;
  return { label, text: `${name} ${((d.objectness ?? 1) * d.scores[label]! * 100).toFixed(0)}%` };
}

/** Draws detections scaled to `size`, numbered as the CLI lists them. */
function drawDetections(base: RgbaImage, dets: Detection[], size: number, classes: readonly string[] | undefined): RgbaImage {
  const img = resizeRgba(base, size, size, 'bilinear');
  const k = size / base.width;
  dets.forEach((d, i) => {
    const box = d.box.map((v) => v * k);
    drawBox(img, box, [255, 64, 64, 255], 2);
    drawText(img, `${i} ${describe(d, classes).text}`, Math.max(0, box[0]! + 3), Math.max(0, box[1]! + 3), { scale: 1, color: [255, 255, 0, 255] });
  });
  return img;
}

export async function detectCommand(o: DetectCommandOptions): Promise<void> {
  const gpu = await initGpu();
  try {
    const model = await loadModelArgument(gpu, o.detector);
    if (!(model instanceof Model)) throw new ArgumentError(`--detector must be a grid detector of ours (fashion-detector or a .safetensors file); '${o.detector}' is an imported graph`);
    detectorGeometry(model);
    const { x, view } = loadSceneImage(model, o.image);
    const [dets] = await detect(model, x, { threshold: o.threshold });
    dets!.forEach((d, i) => console.log(`  ${i}: ${describe(d, model.classNames).text}  box [${d.box.map((v) => v.toFixed(1)).join(', ')}]`));
    if (!dets!.length) console.log('  no detections above the threshold');
    const file = join(resolve(o.out), 'detections.png');
    writePng(file, drawDetections(view, dets!, o.size, model.classNames));
    console.log(`${dets!.length} detection(s) → ${file}`);
    x.dispose();
    model.dispose();
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
  batchSize: number;
}

export async function driseCommand(o: DriseCommandOptions): Promise<void> {
  const gpu = await initGpu();
  try {
    const model = await loadModelArgument(gpu, o.detector);
    if (!(model instanceof Model)) throw new ArgumentError(`--detector must be a grid detector of ours (fashion-detector or a .safetensors file); '${o.detector}' is an imported graph`);
    detectorGeometry(model);
    const { x, view } = loadSceneImage(model, o.image);
    const [dets] = await detect(model, x, { threshold: o.threshold });
    const target = dets![o.target];
    if (!target) {
      throw new ArgumentError(`--target ${o.target}: the detector found ${dets!.length} detection(s) (0..${dets!.length - 1}); run 'saliency detect' to list them`);
    }
    console.log(`explaining detection ${o.target}: ${describe(target, model.classNames).text}`);
    let last = 0;
    const map = await drise((images) => detect(model, images, { threshold: 0 }), x, {
      target,
      masks: o.masks,
      gridSize: o.grid,
      p: o.p,
      seed: o.seed,
      batchSize: o.batchSize,
      onProgress: (done, total) => {
        if (done === total || done - last >= total / 10) {
          last = done;
          console.log(`  masks ${done}/${total}`);
        }
      },
    });
    const raw = { data: await map.read(), shape: [...map.shape] };
    const image = renderOverlay(raw, view, { kind: 'cam', size: o.size, opacity: 0.6 });
    drawBox(image, target.box.map((v) => (v * o.size) / view.width), [255, 64, 64, 255], 2);
    const file = join(resolve(o.out), `drise-${o.target}.png`);
    writePng(file, image);
    console.log(`${o.masks} masks in ${map.seconds.toFixed(1)} s (${map.masksPerSecond.toFixed(0)} masks/s) → ${file}`);
    map.dispose();
    x.dispose();
    model.dispose();
  } finally {
    gpu.destroy();
  }
}
