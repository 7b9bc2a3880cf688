/**
 * On the bundled, trained models: every method's map puts more than half of its mass inside the
 * object's silhouette (Fashion-MNIST's non-zero pixels) for most test images.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../src/nets/idx.js';
import { bundledWeightsUrl, loadModel } from '../src/nets/zoo.js';
import { tensor } from '../src/runtime/tensor.js';
import { displayMap } from '../src/saliency/render.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu } from './helpers.js';

const IMAGES = 24;
const METHODS = ['vanilla', 'deconvnet', 'guidedBackprop', 'gradTimesInput', 'smoothGrad', 'cam', 'gradCam', 'guidedGradCam'] as const;

for (const name of ['fashion-vgg', 'fashion-gap']) {
  const available = existsSync(fileURLToPath(bundledWeightsUrl(name)));
  describe.runIf(available)(`${name}: maps concentrate on the object`, () => {
    for (const method of METHODS) {
      if (method === 'cam' && name === 'fashion-vgg') continue; // no GAP head
      it(method, async () => {
        const gpu = await getGpu();
        const model = await loadModel(gpu, name);
        const test = loadFashionMnist('test', undefined, { limit: IMAGES });
        const x = tensor(gpu, test.images, [IMAGES, 1, 28, 28]);
        const target = [...test.labels];
        const raw =
          method === 'smoothGrad'
            ? await saliency.smoothGrad(model, x, { target, samples: 10, seed: 1, batchSize: 10 })
            : await saliency[method](model, x, { target });
        const kind = method === 'cam' || method === 'gradCam' ? 'cam' : 'attribution';
        const map = displayMap({ data: await raw.read(), shape: [...raw.shape] }, { clip: 100, kind });
        let inside = 0;
        for (let i = 0; i < IMAGES; i++) {
          let total = 0;
          let onObject = 0;
          for (let p = 0; p < 784; p++) {
            const v = map.data[i * 784 + p]!;
            total += v;
            if (test.images[i * 784 + p]! > 0) onObject += v;
          }
          if (onObject > 0.5 * total) inside++;
        }
        expect(inside / IMAGES, `${inside} of ${IMAGES} images`).toBeGreaterThanOrEqual(0.75);
        raw.dispose();
        x.dispose();
        model.dispose();
      });
    }
  });
}
