import { describe, expect, it } from 'vitest';
import { meanAveragePrecision, nms } from '../src/nets/boxes.js';
import { Adam } from '../src/nets/optim.js';
import { decodeDetections, detect, detectionLoss, scoredBoxes, trainDetector, type DetectorGeometry } from '../src/nets/detector.js';
import { loadFashionMnist } from '../src/nets/idx.js';
import { modelFromSpec } from '../src/nets/model.js';
import { generateScene, type Scene } from '../src/nets/scenes.js';
import { tensor } from '../src/runtime/tensor.js';
import type { Detection } from '../src/saliency/drise.js';
import { gradCheck } from './gradcheck.js';
import { getGpu, randomArray } from './helpers.js';

const source = loadFashionMnist('train', undefined, { limit: 200 });

describe('synthetic scenes', () => {
  it('are reproducible, inside the canvas, separated, and their boxes hold the item', () => {
    for (let i = 0; i < 30; i++) {
      const a = generateScene(source, 7, i);
      const b = generateScene(source, 7, i);
      expect([...a.image]).toEqual([...b.image]);
      expect(a.boxes).toEqual(b.boxes);
      expect(a.boxes.length).toBeGreaterThanOrEqual(1);
      expect(a.boxes.length).toBe(a.labels.length);
      for (const [x1, y1, x2, y2] of a.boxes) {
        expect(x1 >= 0 && y1 >= 0 && x2 <= 96 && y2 <= 96 && x2 > x1 && y2 > y1).toBe(true);
        let peak = 0;
        for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) peak = Math.max(peak, a.image[y * 96 + x]!);
        expect(peak).toBeGreaterThan(0.5); // clutter stays below 0.4 and noise near 0
      }
      expect(a.labels.every((l) => Number.isInteger(l) && l >= 0 && l < 10)).toBe(true);
    }
    expect([...generateScene(source, 8, 0).image]).not.toEqual([...generateScene(source, 7, 0).image]);
  });
});

describe('boxes', () => {
  it('nms keeps the best of overlapping boxes', () => {
    const boxes = [
      [0, 0, 10, 10],
      [1, 1, 11, 11], // IoU with the first: 81/119 = 0.68
      [20, 20, 30, 30],
    ];
    expect(nms(boxes, [0.9, 0.95, 0.5], 0.45)).toEqual([1, 2]);
    expect(nms(boxes, [0.9, 0.95, 0.5], 0.7)).toEqual([1, 0, 2]);
  });

  it('mAP: perfect detections give 1; a false positive ranked first halves the precision at full recall', () => {
    const truths = [{ boxes: [[0, 0, 10, 10]], labels: [3] }];
    expect(meanAveragePrecision([[{ box: [0, 0, 10, 10], label: 3, score: 0.9 }]], truths).map).toBe(1);
    // Ranked: FP (0.9) then TP (0.8): precision at recall 1 is 1/2 → AP = 0.5.
    const ranked = [[{ box: [50, 50, 60, 60], label: 3, score: 0.9 }, { box: [1, 0, 10, 10], label: 3, score: 0.8 }]];
    expect(meanAveragePrecision(ranked, truths).map).toBeCloseTo(0.5, 12);
    // The wrong class finds nothing: AP 0 for class 3.
    expect(meanAveragePrecision([[{ box: [0, 0, 10, 10], label: 4, score: 0.9 }]], truths).map).toBe(0);
    // A duplicate of a found object is a false positive, even if it overlaps another object less:
    // TP (0.9), then a duplicate of the same box (0.8, FP), then the second object (0.7, TP).
    const two = [{ boxes: [[0, 0, 10, 10], [8, 0, 18, 10]], labels: [3, 3] }];
    const dup = [[{ box: [0, 0, 10, 10], label: 3, score: 0.9 }, { box: [1, 0, 11, 10], label: 3, score: 0.8 }, { box: [8, 0, 18, 10], label: 3, score: 0.7 }]];
    // recall 0.5 at precision 1, recall 1 at precision 2/3 → AP = 0.5·1 + 0.5·(2/3)
    expect(meanAveragePrecision(dup, two).map).toBeCloseTo(0.5 + 1 / 3, 12);
    // Two classes average: class 3 perfect, class 5 missed → 0.5.
    const mixed = [{ boxes: [[0, 0, 10, 10], [20, 20, 30, 30]], labels: [3, 5] }];
    expect(meanAveragePrecision([[{ box: [0, 0, 10, 10], label: 3, score: 0.9 }]], mixed).map).toBe(0.5);
  });
});

describe('detector evaluation', () => {
  it('scores each box for every class (VOC protocol), or for its top class only', () => {
    const dets: Detection[] = [{ box: [0, 0, 10, 10], objectness: 0.5, scores: [0.6, 0.4] }];
    expect(scoredBoxes(dets, 'all')).toEqual([
      { box: [0, 0, 10, 10], label: 0, score: 0.3 },
      { box: [0, 0, 10, 10], label: 1, score: 0.2 },
    ]);
    expect(scoredBoxes(dets, 'top1')).toEqual([{ box: [0, 0, 10, 10], label: 0, score: 0.3 }]);
    // The object is of class 1: its second-ranked class still finds it under the VOC protocol
    // (AP 1 for class 1, the only class with ground truth), not when only the top class counts.
    const truth = [{ boxes: [[0, 0, 10, 10]], labels: [1] }];
    expect(meanAveragePrecision([scoredBoxes(dets, 'all')], truth).map).toBe(1);
    expect(meanAveragePrecision([scoredBoxes(dets, 'top1')], truth).map).toBe(0);
    // Without objectness (another library's detector), the class probability is the score.
    expect(scoredBoxes([{ box: [1, 2, 3, 4], scores: [0.25, 0.75] }], 'top1')).toEqual([{ box: [1, 2, 3, 4], label: 1, score: 0.75 }]);
  });
});

describe('detector head', () => {
  const geo: DetectorGeometry = { size: 16, grid: 2, classes: 2 };

  it('decodes a cell into a box in pixels', () => {
    // One image, 7 channels × 2×2 cells. Cell (1, 0): objectness logit 5, offsets 0 (σ = 0.5),
    // size logits 0 (σ = 0.5 → 8 px), class logits (0, ln 3) → probabilities (0.25, 0.75).
    const v = new Float32Array(7 * 4).fill(-10);
    const cell = 2; // row 1, column 0
    v[0 * 4 + cell] = 5;
    for (const ch of [1, 2, 3, 4]) v[ch * 4 + cell] = 0;
    v[5 * 4 + cell] = 0;
    v[6 * 4 + cell] = Math.log(3);
    const [dets] = decodeDetections(v, 1, geo);
    expect(dets).toHaveLength(1);
    const d = dets![0]!;
    // centre: ((0 + 0.5)·8, (1 + 0.5)·8) = (4, 12); size 8 → [0, 8, 8, 16]
    d.box.forEach((c, i) => expect(c).toBeCloseTo([0, 8, 8, 16][i]!, 5));
    expect(d.objectness).toBeCloseTo(1 / (1 + Math.exp(-5)), 6);
    expect(d.scores[1]).toBeCloseTo(0.75, 6);
  });

  it('the loss on zero logits is what the definition gives by hand', async () => {
    const gpu = await getGpu();
    const zeros = () => tensor(gpu, new Float32Array(28), [1, 7, 2, 2]);
    const value = async (scene: Scene) => (await (await detectionLoss(zeros(), [scene], geo)).read())[0]!;
    // Every σ is 1/2 and every class probability 1/2. A 6×5 box centred at (5, 12.5), in cell
    // (1, 0): objectness 5·ln 2 (its cell) + 3·ln 2 (the others); box (σ − target) in cells:
    // offsets 0.5 − 0.625 and 0.5 − 0.5625, sizes (0.5 − 6/16)·2 and (0.5 − 5/16)·2, squared and
    // summed = 0.22265625, times 2; class ln 2 on its own cell only (no neighbour centre in the box).
    const small: Scene = { image: new Float32Array(256), boxes: [[2, 10, 8, 15]], labels: [1] };
    expect(await value(small)).toBeCloseTo(9 * Math.LN2 + 2 * 0.22265625, 4);
    // The whole image, centred at (8, 8) → cell (1, 1): offsets 0, sizes 1. Box: 2·(0.25 + 0.25 +
    // 1 + 1) = 5; every neighbour's centre is inside, so all four cells learn the class: 4·ln 2.
    const whole: Scene = { image: new Float32Array(256), boxes: [[0, 0, 16, 16]], labels: [0] };
    expect(await value(whole)).toBeCloseTo(8 * Math.LN2 + 5 + 4 * Math.LN2, 4);
  });

  it('the loss has the gradient finite differences give', async () => {
    const gpu = await getGpu();
    const scenes: Scene[] = [{ image: new Float32Array(256), boxes: [[2, 10, 8, 15]], labels: [1] }];
    await gradCheck(gpu, ([out]) => detectionLoss(out!, scenes, geo), [{ data: randomArray(28, 3, -1.5, 1.5), shape: [1, 7, 2, 2] }]);
    const wide: Scene[] = [{ image: new Float32Array(256), boxes: [[1, 1, 15, 14]], labels: [0] }];
    await gradCheck(gpu, ([out]) => detectionLoss(out!, wide, geo), [{ data: randomArray(28, 4, -1.5, 1.5), shape: [1, 7, 2, 2] }]);
  });

  it('a small detector learns on a few dozen scenes, and detect() returns D-RISE detections', async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(
      gpu,
      {
        name: 'mini-detector',
        input: [1, 32, 32],
        layers: [
          { name: 'c1', type: 'conv2d', in: 1, out: 8, kernel: 3, padding: 1 },
          { name: 'r1', type: 'relu' },
          { name: 'p1', type: 'maxpool2d', kernel: 2 },
          { name: 'c2', type: 'conv2d', in: 8, out: 16, kernel: 3, padding: 1 },
          { name: 'r2', type: 'relu' },
          { name: 'p2', type: 'maxpool2d', kernel: 2 },
          { name: 'head', type: 'conv2d', in: 16, out: 15, kernel: 1 },
        ],
      },
      undefined,
      { seed: 1 },
    );
    const optimizer = new Adam({ lr: 3e-3 });
    const sceneOptions = { size: 32, minScale: 12, maxScale: 20, maxObjects: 2, clutter: 1 };
    const losses = await trainDetector(model, { source, scenes: 64, epochs: 10, batchSize: 16, optimizer, seed: 3, sceneOptions });
    const first = losses[0]!;
    const last = losses.slice(-4).reduce((a, b) => a + b, 0) / 4;
    expect(last).toBeLessThan(0.5 * first);
    const scene = generateScene(source, 3, 0, sceneOptions);
    const dets = await detect(model, tensor(gpu, scene.image, [1, 1, 32, 32]), { threshold: 0 });
    expect(dets).toHaveLength(1);
    expect(dets[0]!.length).toBeGreaterThan(0); // threshold 0: every cell's best box survives NMS or is suppressed by one that does
    for (const d of dets[0]!) {
      expect(d.box).toHaveLength(4);
      expect(d.scores).toHaveLength(10);
      expect(d.scores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    optimizer.dispose();
    model.dispose();
  });
});
