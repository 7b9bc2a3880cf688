/**
 * Object detection with an imported CenterNet graph (e.g. @vladmandic/human's `centernet`:
 * MobileNetV3 backbone, 80 COCO classes, 512×512 input in 0..255). The network runs on our kernels
 * up to its two heat-map outputs; the post-processing that the graph itself does with TopKV2,
 * GatherV2 and friends runs here, in TypeScript on the CPU:
 *
 *   keypoints [N, 80, h, w]  per-class centre heat maps (after a sigmoid), h = H / stride
 *   wh        [N, 4, h, w]   distances (left, top, right, bottom) from the cell to the box edges,
 *                            in input pixels
 *
 * A peak is a heat value equal to the maximum of its 3×3 neighbourhood (a SAME max-pool, so border
 * cells compare with the image only). The K best peaks over all classes and cells are decoded as
 * box = [stride·x − left, stride·y − top, stride·x + right, stride·y + bottom], exactly as the
 * graph's 'tower_0/detections' output; then, as human's post-processing does, peaks below
 * `minScore` are dropped and boxes overlapping a better one by more than `iouThreshold` are
 * suppressed (class-agnostic non-maximum suppression).
 */
import { noGrad } from '../autodiff/tape.js';
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import type { Detection, Detector } from './types.js';
import { iou } from './boxes.js';
import type { TfjsGraphModel } from './tfjs-graph.js';

/** The 80 COCO object classes, in the order of CenterNet's heat-map channels. */
export const COCO_CLASSES: readonly string[] = Object.freeze([
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
  'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
  'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
  'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
]); // prettier-ignore

/** The graph outputs to import a CenterNet with: `loadTfjsGraphModel(gpu, path, { outputs: CENTERNET_OUTPUTS })`. */
export const CENTERNET_OUTPUTS: readonly string[] = Object.freeze(['tower_0/keypoints', 'tower_0/wh']);

export interface CenterNetOptions {
  /** Drop peaks scoring below this (default 0.2, human's default). */
  minScore?: number;
  /** Suppress boxes overlapping a better one by more than this IoU (default 0.4); 1 keeps all. */
  iouThreshold?: number;
  /** Peaks considered before suppression (default 100, the graph's TopKV2 k). */
  topK?: number;
  /** Node names of the heat maps (default CENTERNET_OUTPUTS). */
  keypoints?: string;
  wh?: string;
  /** Class names (default COCO_CLASSES). */
  classNames?: readonly string[];
}

/** A detection: D-RISE's Detection plus the class it was picked for. */
export interface CenterNetDetection extends Detection {
  /** Box [x1, y1, x2, y2] in input pixels. */
  box: [number, number, number, number];
  /** The heat values of all classes at the box's centre cell (sigmoid probabilities). */
  scores: number[];
  classIndex: number;
  label: string;
  /** scores[classIndex]. */
  score: number;
}

/**
 * Detects objects in images [N, 3, H, W] (values 0..255 for human's CenterNet). Returns one list
 * per image, best first.
 */
export async function centernetDetect(model: TfjsGraphModel, images: Tensor, options: CenterNetOptions = {}): Promise<CenterNetDetection[][]> {
  checkOptions(options);
  const { keypoints = CENTERNET_OUTPUTS[0]!, wh = CENTERNET_OUTPUTS[1]! } = options;
  const outs = await noGrad(model.gpu, () => model.forwardAll(images, { outputs: [keypoints, wh] }));
  try {
    return await decodeCenterNet(outs[keypoints]!, outs[wh]!, images.shape[2]!, options);
  } finally {
    outs[keypoints]!.dispose();
    outs[wh]!.dispose();
  }
}

function checkOptions(o: CenterNetOptions): void {
  const { minScore = 0.2, iouThreshold = 0.4, topK = 100 } = o;
  if (!(minScore >= 0 && minScore <= 1)) throw new ArgumentError(`centernetDetect: minScore must be in [0, 1], got ${minScore}`);
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw new ArgumentError(`centernetDetect: iouThreshold must be in [0, 1], got ${iouThreshold}`);
  if (!Number.isInteger(topK) || topK < 1) throw new ArgumentError(`centernetDetect: topK must be a positive integer, got ${topK}`);
}

/**
 * The post-processing alone: detections from the heat maps keypoints [N, classes, h, w] and
 * wh [N, 4, h, w] of an input `inputHeight` pixels high (the stride is inputHeight / h).
 */
export async function decodeCenterNet(keypoints: Tensor, wh: Tensor, inputHeight: number, options: CenterNetOptions = {}): Promise<CenterNetDetection[][]> {
  checkOptions(options);
  const { minScore = 0.2, iouThreshold = 0.4, topK = 100, classNames = COCO_CLASSES } = options;
  const [kp, bx] = [keypoints, wh];
  if (kp.rank !== 4 || bx.rank !== 4 || bx.shape[1] !== 4 || kp.shape[0] !== bx.shape[0] || kp.shape[2] !== bx.shape[2] || kp.shape[3] !== bx.shape[3]) {
    throw new ShapeError(`decodeCenterNet: expected heat maps [N, classes, h, w] and [N, 4, h, w], got ${formatShape(kp.shape)} and ${formatShape(bx.shape)}`);
  }
  const [n, classes, h, w] = kp.shape as [number, number, number, number];
  if (classNames.length !== classes) throw new ArgumentError(`decodeCenterNet: ${classNames.length} class names for ${classes} heat maps`);
  const [heat, sizes] = await Promise.all([kp.read(), bx.read()]);
  const stride = inputHeight / h;
  const plane = h * w;
  const result: CenterNetDetection[][] = [];
  for (let b = 0; b < n; b++) {
    const hb = heat.subarray(b * classes * plane, (b + 1) * classes * plane);
    const sb = sizes.subarray(b * 4 * plane, (b + 1) * 4 * plane);
    // Peaks, ordered as TF's TopKV2 over the NHWC-flattened map: by value, then by index.
    const peaks: { v: number; index: number; c: number; cell: number }[] = [];
    for (let c = 0; c < classes; c++) {
      const m = hb.subarray(c * plane, (c + 1) * plane);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = m[y * w + x]!;
          if (!(v >= minScore) || !isPeak(m, h, w, y, x, v)) continue;
          peaks.push({ v, index: (y * w + x) * classes + c, c, cell: y * w + x });
        }
      }
    }
    peaks.sort((p, q) => q.v - p.v || p.index - q.index);
    const kept: CenterNetDetection[] = [];
    for (const p of peaks.slice(0, topK)) {
      const [y, x] = [Math.floor(p.cell / w), p.cell % w];
      const d = [0, 1, 2, 3].map((k) => sb[k * plane + p.cell]!);
      const box: [number, number, number, number] = [stride * x - d[0]!, stride * y - d[1]!, stride * x + d[2]!, stride * y + d[3]!];
      if (kept.some((k) => iou(k.box, box) > iouThreshold)) continue;
      const scores = Array.from({ length: classes }, (_, c) => hb[c * plane + p.cell]!);
      kept.push({ box, scores, classIndex: p.c, label: classNames[p.c]!, score: p.v });
    }
    result.push(kept);
  }
  return result;
}

function isPeak(m: Float32Array, h: number, w: number, y: number, x: number, v: number): boolean {
  for (let dy = -1; dy <= 1; dy++) {
    const yy = y + dy;
    if (yy < 0 || yy >= h) continue;
    for (let dx = -1; dx <= 1; dx++) {
      const xx = x + dx;
      if (xx >= 0 && xx < w && m[yy * w + xx]! > v) return false;
    }
  }
  return true;
}

/** CenterNet as a D-RISE detector. */
export function centernetDetector(model: TfjsGraphModel, options: CenterNetOptions = {}): Detector {
  return (images) => centernetDetect(model, images, options);
}
