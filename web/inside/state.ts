/**
 * The "Inside the network" view's state, and its place in the page's URL, so that a link restores
 * the view exactly (a teacher can share one step):
 *
 *   /web/?view=inside&model=fashion-vgg&image=/samples/fashion-0.png&crop=…&target=top
 *        &method=guidedBackprop&layer=relu3&channel=5&step=4&randomise=2&seed=0
 *
 * model, image, crop and target belong to the page's form (shared with the side-by-side view); the
 * rest is the view's own. `step` counts from 1, as the page shows it. Values that do not parse are
 * dropped (the view then picks its default), never an error: a link from elsewhere is a stranger.
 */
import { isMethodName, methodByName, type ClassifierMethodName } from '../../src/saliency/methods.js';

export interface InsideState {
  method: ClassifierMethodName;
  /** The picked layer (the model's name for it); null: the view's default. */
  layer: string | null;
  /** The picked channel of that layer; null: its most active one. */
  channel: number | null;
  /** The backward step shown, from 1. */
  step: number;
  /** Sanity check: how many of the top parameterised layers are re-initialised (0: none). */
  randomise: number;
  /** Sanity check: the seed of the fresh weights. */
  seed: number;
}

export const DEFAULT_METHOD: ClassifierMethodName = 'guidedBackprop';

/** The URL parameters this view owns (besides `view`). */
export const INSIDE_PARAMS = ['method', 'layer', 'channel', 'step', 'randomise', 'seed'] as const;

/** The longest layer name taken from a URL. */
const MAX_NAME = 200;

function whole(text: string | null, min: number): number | null {
  if (text === null || !/^\d{1,9}$/.test(text.trim())) return null;
  const n = Number(text.trim());
  return n >= min ? n : null;
}

/** The view's state from URL parameters (defaults for what is missing or does not parse). */
export function readInsideState(params: URLSearchParams): InsideState {
  const m = params.get('method');
  const method = isMethodName(m) && methodByName(m).kind === 'classifier' ? (m as ClassifierMethodName) : DEFAULT_METHOD;
  const layer = params.get('layer');
  return {
    method,
    layer: layer && layer.length <= MAX_NAME ? layer : null,
    channel: whole(params.get('channel'), 0),
    step: whole(params.get('step'), 1) ?? 1,
    randomise: whole(params.get('randomise'), 0) ?? 0,
    seed: whole(params.get('seed'), 0) ?? 0,
  };
}

/** Writes the view's state into `params` (defaults left out, so links stay short). */
export function writeInsideState(params: URLSearchParams, s: InsideState): void {
  params.set('view', 'inside');
  const set = (name: (typeof INSIDE_PARAMS)[number], value: string | null) => (value === null ? params.delete(name) : params.set(name, value));
  set('method', s.method);
  set('layer', s.layer);
  set('channel', s.channel === null ? null : String(s.channel));
  set('step', s.step === 1 ? null : String(s.step));
  set('randomise', s.randomise === 0 ? null : String(s.randomise));
  set('seed', s.seed === 0 ? null : String(s.seed));
}

/** Removes the view's parameters (back to the side-by-side view). */
export function clearInsideState(params: URLSearchParams): void {
  params.delete('view');
  for (const name of INSIDE_PARAMS) params.delete(name);
}
