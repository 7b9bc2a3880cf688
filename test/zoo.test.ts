/** The bundled models: architectures, loading, and accuracy against the figure docs/models.md documents. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evaluateDetector, heldOutScene } from '../src/nets/detector.js';
import { loadFashionMnist } from '../src/nets/idx.js';
import { evaluate } from '../src/nets/train.js';
import { BUNDLED_MODELS, bundledWeightsUrl, loadModel } from '../src/nets/zoo.js';
import { getGpu } from './helpers.js';

/** Accuracy targets from the issue, and the figure documented in docs/models.md. */
const TARGETS: Record<string, number> = { 'fashion-vgg': 91, 'fashion-gap': 89 };

function documentedAccuracy(name: string): number | undefined {
  const readme = readFileSync(new URL('../docs/models.md', import.meta.url), 'utf8');
  const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\``));
  const m = row && /\| (\d+\.\d+)% \|/.exec(row);
  return m ? Number(m[1]) : undefined;
}

/** The detector's row gives its mAP@0.5 on the held-out scenes (the target is 0.80). */
function documentedMap(): number | undefined {
  const readme = readFileSync(new URL('../docs/models.md', import.meta.url), 'utf8');
  const row = readme.split('\n').find((l) => l.startsWith('| `fashion-detector`'));
  const m = row && /mAP@0\.5 (\d+\.\d+)%/.exec(row);
  return m ? Number(m[1]) : undefined;
}

describe('bundled models', () => {
  it('have the heads their methods need', () => {
    const vgg = BUNDLED_MODELS['fashion-vgg']!;
    expect(vgg.layers.filter((l) => l.type === 'maxpool2d').length).toBeGreaterThanOrEqual(2);
    expect(vgg.layers.filter((l) => l.type === 'conv2d').length).toBeGreaterThanOrEqual(4);
    const gap = BUNDLED_MODELS['fashion-gap']!.layers.map((l) => l.type);
    expect(gap.slice(-3)).toEqual(['relu', 'gap', 'linear']); // conv features → GAP → one linear layer
  });

  it('an unknown name lists the bundled ones', async () => {
    const gpu = await getGpu();
    await expect(loadModel(gpu, 'resnet50')).rejects.toThrow("no bundled model named 'resnet50'; bundled: fashion-vgg, fashion-gap, fashion-detector");
  });

  for (const name of Object.keys(TARGETS)) {
    const weights = fileURLToPath(bundledWeightsUrl(name));
    it.runIf(existsSync(weights))(`${name}: accuracy on the 10,000 test images is the figure in docs/models.md, and at least the target`, async () => {
      const documented = documentedAccuracy(name);
      expect(documented, `docs/models.md documents ${name}'s accuracy`).toBeDefined();
      expect(documented!).toBeGreaterThanOrEqual(TARGETS[name]!);
      const gpu = await getGpu();
      const model = await loadModel(gpu, name);
      expect(model.classNames).toHaveLength(10);
      const test = loadFashionMnist('test');
      const accuracy = (await evaluate(model, test.images, test.labels, { sampleShape: [1, 28, 28] })) * 100;
      // The same images and weights: only float rounding on another adapter may flip a borderline
      // image (0.01 points each).
      expect(Math.abs(accuracy - documented!)).toBeLessThan(0.05);
      expect(accuracy).toBeGreaterThanOrEqual(TARGETS[name]!);
      model.dispose();
    });
  }

  const detectorWeights = fileURLToPath(bundledWeightsUrl('fashion-detector'));
  it.runIf(existsSync(detectorWeights))("fashion-detector: mAP@0.5 on the 500 held-out scenes matches the figure in docs/models.md", async () => {
    const documented = documentedMap();
    expect(documented, "docs/models.md documents fashion-detector's mAP").toBeDefined();
    expect(documented!).toBeGreaterThanOrEqual(80);
    const gpu = await getGpu();
    const model = await loadModel(gpu, 'fashion-detector');
    const test = loadFashionMnist('test');
    const scenes = Array.from({ length: 500 }, (_, i) => heldOutScene(test, i));
    const { map } = await evaluateDetector(model, scenes);
    // The same scenes and weights: only float rounding on another adapter may move a box's rank.
    expect(Math.abs(map * 100 - documented!)).toBeLessThan(0.5);
    model.dispose();
  });
});
