/**
 * The sanity check of Adebayo et al. (2018), one step of it at a time: "randomise the top k layers"
 * re-initialises the k parameterised layers (conv and linear) nearest the output on a copy of the
 * model (the metrics' `reinitialisedCopy`: weights from N(0, σ²) with σ that of the trained
 * weights, biases 0, from `seed`), runs the method again for the same class, and shows the two maps
 * side by side with their similarity (Spearman's rank correlation of |E|, and SSIM of the maps
 * scaled to [0, 1], as `metrics.randomisation` measures it). A map that explains the model should
 * change as its layers are randomised; one that barely changes is explaining the image, not the
 * model.
 *
 * The copy is made with the model's `clone()` (every model the page loads has one: ours, and the
 * imported ONNX and TF.js graphs, whose weights are copied on the GPU).
 */
import type { Tensor } from '../../src/runtime/tensor.js';
import type { RgbaImage } from '../../src/saliency/colormaps.js';
import type { ExplainableModel } from '../../src/saliency/core.js';
import { normalize } from '../../src/saliency/display.js';
import { inputToRgba } from '../../src/saliency/input.js';
import { metrics } from '../../src/saliency/index.js';
import { runMethod } from '../../src/saliency/methods.js';
import { renderOverlay } from '../../src/saliency/render.js';
import type { ViewModel } from '../../src/web/models.js';
import { el } from './dom.js';
import type { InputContext } from './view.js';
import type { InsideState } from './state.js';
import type { InsideData, Plane } from './trace-data.js';

/** What the section needs from the view. */
export interface SanityHost {
  /** Runs `fn` with the input as a tensor. */
  withInput<T>(fn: (ctx: InputContext) => Promise<T>): Promise<T>;
  /** The reader changed the section's state. */
  changed(change: Partial<InsideState>): void;
  /** A computation finished: draw again. */
  rendered(): void;
  /** A named canvas (registered with its numbers). */
  draw(name: string, img: RgbaImage, zoom: number, values: { shape: number[]; values: ArrayLike<number> }): HTMLCanvasElement;
}

/** The randomised run of one (k, seed). */
export interface SanityResult {
  /** The layers re-initialised, top first. */
  layers: string[];
  map: Plane;
  spearmanAbs: number;
  ssim: number;
}

/** The layers the check can re-initialise, in model order (those with weights). */
export function sanityLayers(model: ExplainableModel): string[] {
  return metrics.parameterisedLayers(model);
}

/**
 * The method's map on a copy of `model` whose top `k` parameterised layers are re-initialised
 * from `seed`, and its similarity to `trained` (the map on the model as it is).
 */
export async function randomisedRun(
  model: ExplainableModel,
  x: Tensor,
  options: { method: InsideState['method']; target: number; k: number; seed: number; trained: Plane; display: 'attribution' | 'cam' },
): Promise<SanityResult> {
  const all = sanityLayers(model);
  const layers = all.slice(all.length - options.k).reverse();
  // The copy's tensors are made in the device's queue; the method queues itself. A model from a
  // page's own loader without clone() gets reinitialisedCopy's error, shown in the section.
  const copy = await model.gpu.exclusive(() => metrics.reinitialisedCopy(model as metrics.ClonableModel, layers, { seed: options.seed }));
  let map: Plane;
  try {
    const t = await runMethod(options.method, copy, x, { target: options.target });
    try {
      map = { shape: [...t.shape], values: await t.read() };
    } finally {
      t.dispose();
    }
  } finally {
    copy.dispose();
  }
  return { layers, map, ...similarity(options.trained, map, options.display) };
}

/** Spearman's ρ of |E| and SSIM of the maps scaled to [0, 1], as metrics.randomisation compares them. */
export function similarity(a: Plane, b: Plane, display: 'attribution' | 'cam'): { spearmanAbs: number; ssim: number } {
  const [, , h, w] = a.shape as [number, number, number, number];
  const ra = metrics.reduceMap({ data: a.values, shape: a.shape }, display, h, w, 'abs')[0]!;
  const rb = metrics.reduceMap({ data: b.values, shape: b.shape }, display, h, w, 'abs')[0]!;
  const scaled = (v: Float32Array) => normalize({ data: v, shape: [1, h, w] }).data;
  return {
    spearmanAbs: metrics.spearman(ra.map(Math.abs), rb.map(Math.abs)),
    ssim: h >= 7 && w >= 7 ? metrics.ssim(scaled(ra), scaled(rb), h, w) : NaN,
  };
}

/** The section: its controls, the trained and randomised maps, and the similarity. */
export function sanitySection(host: SanityHost) {
  let results = new Map<string, { value: SanityResult | null; error: string | null }>();
  return {
    /** Forgets the results (new model, image or method). */
    reset(): void {
      results = new Map();
    },
    draw(ctx: { model: ViewModel; data: InsideData; state: InsideState; input: Float32Array; inputShape: number[] }): { section: HTMLElement; pending: boolean } {
      const { model, data, state } = ctx;
      const section = el('section', { class: 'sanity' }, el('h2', { text: 'Sanity check: randomise the top k layers' }));
      let all: string[];
      try {
        all = sanityLayers(model);
      } catch (e) {
        section.append(el('p', { class: 'note', text: (e as Error).message }));
        return { section, pending: false };
      }
      const L = all.length;
      const k = Math.min(state.randomise, L);
      section.append(
        el('p', {
          class: 'note',
          text: `Adebayo et al. (2018): a map that explains the model should change when the model does. This re-initialises the top k of its ${L} layers with weights (conv and linear: weights drawn from N(0, σ²) with σ that of the trained weights, biases 0) on a copy of the model, runs ${data.method.label} again for the same class, and compares the two maps. Spearman’s ρ of |E| near 1 and SSIM near 1 mean the map hardly changed.`,
        }),
      );
      const kInput = el('input', { type: 'number', id: 'inside-randomise', min: '0', max: String(L), step: '1', value: String(k) }) as HTMLInputElement;
      const seedInput = el('input', { type: 'number', id: 'inside-seed', min: '0', step: '1', value: String(state.seed) }) as HTMLInputElement;
      kInput.addEventListener('change', () => {
        const v = Math.round(Number(kInput.value));
        host.changed({ randomise: Number.isFinite(v) ? Math.max(0, Math.min(L, v)) : 0 });
      });
      seedInput.addEventListener('change', () => {
        const v = Math.round(Number(seedInput.value));
        host.changed({ seed: Number.isFinite(v) && v >= 0 ? v : 0 });
      });
      const chosen = all.slice(L - k).reverse();
      section.append(
        el(
          'div',
          { class: 'stepper' },
          el('label', {}, 'randomise the top ', kInput, ` of ${L} layers`),
          el('label', {}, ' seed ', seedInput),
          el('span', { class: 'note', text: k ? `re-initialised: ${chosen.join(', ')}` : `layers, top first: ${[...all].reverse().join(', ')}` }),
        ),
      );
      if (k === 0) {
        section.append(el('p', { class: 'note', text: 'Set k above 0 to re-run the method on a randomised copy.' }));
        return { section, pending: false };
      }
      const key = `${k}|${state.seed}`;
      let r = results.get(key);
      if (!r) {
        const made: { value: SanityResult | null; error: string | null } = { value: null, error: null };
        results.set(key, made);
        r = made;
        const mine = results;
        host
          .withInput(({ model: m, x, target }) =>
            randomisedRun(m, x, { method: data.method.name, target, k, seed: state.seed, trained: data.method.map, display: data.method.display }),
          )
          .then(
            (v) => {
              made.value = v;
            },
            (e: Error) => {
              made.error = e.message;
            },
          )
          .finally(() => {
            if (results === mine) host.rendered();
          });
      }
      if (r.error) {
        section.append(el('p', { class: 'message', text: r.error }));
        return { section, pending: false };
      }
      if (!r.value) {
        section.append(el('p', { class: 'note', text: `running ${data.method.label} on a copy with ${k} layer${k === 1 ? '' : 's'} re-initialised…` }));
        return { section, pending: true };
      }
      const [, channels, height, width] = ctx.inputShape as [number, number, number, number];
      const base = inputToRgba(ctx.input, channels, width, height);
      const size = 168;
      const picture = (name: string, p: Plane) =>
        host.draw(name, renderOverlay({ data: p.values, shape: p.shape }, base, { size, kind: data.method.display, colormap: 'viridis' }), 1, { shape: p.shape, values: p.values });
      const fig = (canvas: HTMLElement, caption: string) => el('figure', {}, canvas, el('figcaption', { text: caption }));
      section.append(
        el(
          'div',
          { class: 'row' },
          fig(picture('sanity.trained', data.method.map), `${data.method.label}, the model as trained`),
          fig(picture('sanity.randomised', r.value.map), `top ${k} layer${k === 1 ? '' : 's'} randomised (seed ${state.seed})`),
          el(
            'div',
            { class: 'note', 'data-similarity': JSON.stringify({ spearmanAbs: r.value.spearmanAbs, ssim: r.value.ssim }) },
            el('div', { text: `Spearman ρ of |E|: ${r.value.spearmanAbs.toFixed(3)}` }),
            el('div', { text: `SSIM: ${Number.isNaN(r.value.ssim) ? '— (map smaller than 7×7)' : r.value.ssim.toFixed(3)}` }),
          ),
        ),
      );
      return { section, pending: false };
    },
  };
}
