/**
 * D-RISE on the bundled, trained detector: the pointing game. For correctly detected objects in
 * held-out scenes, the saliency maximum must fall inside the object's box.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { iou } from '../src/nets/boxes.js';
import { detect, heldOutScene } from '../src/nets/detector.js';
import { loadFashionMnist } from '../src/nets/idx.js';
import { bundledWeightsUrl, loadModel } from '../src/nets/zoo.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { drise, type Detection } from '../src/saliency/drise.js';
import { getGpu } from './helpers.js';

const SCENES = 50;
// Fewer and coarser masks than the defaults (5000, grid 16) keep 50 scenes within a minute or two
// on lavapipe; a 12-pixel cell is still a quarter of the smallest item.
const MASKS = 240;
const GRID = 8;

const available = existsSync(fileURLToPath(bundledWeightsUrl('fashion-detector')));

describe.runIf(available)('fashion-detector: D-RISE pointing game', () => {
  it(`the saliency maximum lies in the box of ≥ 90% of the correctly detected objects of ${SCENES} held-out scenes`, { timeout: 900_000 }, async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const model = await loadModel(gpu, 'fashion-detector');
    const testImages = loadFashionMnist('test');
    const detector = (images: Tensor) => detect(model, images);
    let objects = 0;
    let hits = 0;
    for (let i = 0; i < SCENES; i++) {
      const scene = heldOutScene(testImages, i);
      const x = tensor(gpu, scene.image, [1, 1, 96, 96]);
      const [found] = await detect(model, x);
      // A correct detection: IoU ≥ 0.5 with a ground-truth box, and that object's class on top.
      const targets: Detection[] = [];
      const boxes: number[][] = [];
      scene.boxes.forEach((box, k) => {
        const match = found!.find((d) => iou(d.box, box) >= 0.5 && d.scores.indexOf(Math.max(...d.scores)) === scene.labels[k]);
        if (match) {
          targets.push(match);
          boxes.push(box);
        }
      });
      if (targets.length) {
        const maps = await drise(detector, x, { target: targets, masks: MASKS, gridSize: GRID, seed: i, batchSize: 48 });
        const values = await maps.read();
        maps.dispose();
        boxes.forEach(([x1, y1, x2, y2], t) => {
          const map = values.subarray(t * 96 * 96, (t + 1) * 96 * 96);
          let best = 0;
          for (let p = 1; p < map.length; p++) if (map[p]! > map[best]!) best = p;
          const [px, py] = [(best % 96) + 0.5, Math.floor(best / 96) + 0.5];
          objects++;
          if (px >= x1! && px <= x2! && py >= y1! && py <= y2!) hits++;
        });
      }
      x.dispose();
    }
    console.log(`pointing game: ${hits} of ${objects} maxima inside their boxes`);
    expect(objects, "correctly detected objects").toBeGreaterThanOrEqual(SCENES);
    expect(hits / objects, `${hits} of ${objects} maxima inside their boxes`).toBeGreaterThanOrEqual(0.9);
    model.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });
});
