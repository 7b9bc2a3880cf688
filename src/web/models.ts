/**
 * The browser side of the web component: one shared GPU device, whose queue (`gpu.exclusive`, the
 * library's own) runs GPU work one job at a time, and models loaded once and cached by name or URL.
 * Model files from other sites are read under the size limit (`maxModelBytes`) and parsed with the
 * same checks as files on disk (src/runtime/limits.ts, docs/security.md).
 *
 * A model is named by a bundled name ('fashion-vgg') or a URL; the URL's ending picks the loader
 * (`registerModelLoader`): '.safetensors' (our own files, spec in the metadata), '.json' (TF.js
 * graph or layers models) and '.onnx' (ONNX models, through src/nets/onnx/model.ts) are built in.
 */
import { ArgumentError } from '../runtime/errors.js';
import { readResponse } from '../runtime/fetch.js';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { modelFromSafetensors } from '../nets/model.js';
import { BUNDLED_MODELS, loadModel, type BundledModelName } from '../nets/zoo.js';
import { GRAPH_MODEL_CLASSES } from '../nets/tfjs-graph.js';
import { loadTfjsModel } from '../nets/tfjs-layers.js';
import { loadOnnxModel } from '../nets/onnx/model.js';
import type { InputNormalization } from '../nets/normalization.js';
import { imagenetClasses, parseLabels } from '../nets/labels.js';
import type { ExplainableModel } from '../saliency/core.js';

/** What the component needs of a model: the methods' interface, class names and disposal. */
export type ViewModel = ExplainableModel & { readonly classNames?: readonly string[]; dispose(): void };

/** How a page asks for a model beyond its URL: input normalisation (ONNX models). */
export interface ViewModelOptions {
  normalize?: InputNormalization;
}

/** Loads a model from a URL onto `gpu`. */
export type ModelLoader = (gpu: Gpu, url: URL, options?: ViewModelOptions) => Promise<ViewModel>;

interface LoaderEntry {
  suffix: string;
  load: ModelLoader;
}

const loaders: LoaderEntry[] = [];

/**
 * Registers how to load models whose URL path ends with `suffix` (case-insensitive, e.g.
 * '.safetensors', 'model.json', '.onnx'). A later registration of the same suffix replaces the
 * earlier one; the longest matching suffix wins.
 */
export function registerModelLoader(suffix: string, load: ModelLoader): void {
  if (typeof suffix !== 'string' || suffix === '') throw new ArgumentError('registerModelLoader: suffix must be a non-empty string');
  const s = suffix.toLowerCase();
  const i = loaders.findIndex((l) => l.suffix === s);
  if (i >= 0) loaders.splice(i, 1);
  loaders.push({ suffix: s, load });
  loaders.sort((a, b) => b.suffix.length - a.suffix.length);
}

/** The suffixes that have a loader, longest first. */
export function modelSuffixes(): string[] {
  return loaders.map((l) => l.suffix);
}

async function fetchBytes(url: URL, what: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ArgumentError(`could not fetch the ${what} ${url.href}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new ArgumentError(`could not fetch the ${what} ${url.href}: HTTP ${res.status}${res.status === 404 ? ' (not found)' : ''}`);
  return readResponse(res, `${what} ${url.href}`); // refused past maxModelBytes, even without a Content-Length
}

function fileName(url: URL): string {
  return decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
}

registerModelLoader('.safetensors', async (gpu, url) => modelFromSafetensors(gpu, await fetchBytes(url, 'model file'), undefined, fileName(url)));

// TF.js graph or layers models (model.json + weight shards, fetched relative to it). The loaders are
// in the bundle anyway: loadModel (nets/zoo.ts) imports them.
registerModelLoader('.json', async (gpu, url) => {
  const classNames = GRAPH_MODEL_CLASSES.get(fileName(url));
  return loadTfjsModel(gpu, url, classNames ? { classNames: [...classNames] } : {});
});

// ONNX models (external data fetched from the model's own origin and folder).
registerModelLoader('.onnx', async (gpu, url, options = {}) => {
  return loadOnnxModel(gpu, url, { normalize: options.normalize });
});

let gpuPromise: Promise<Gpu> | null = null;

/** The page's one GPU device, opened on first use (a failure is retried on the next call). */
export function sharedGpu(): Promise<Gpu> {
  gpuPromise ??= initGpu().catch((e: unknown) => {
    gpuPromise = null;
    throw e;
  });
  return gpuPromise;
}

/**
 * Runs `job` in the shared device's queue (`gpu.exclusive`), after every job queued before it has
 * finished: the same queue the saliency methods run in, so a component's GPU work never interleaves
 * with theirs or another component's. In a browser, do not call the saliency methods inside `job`
 * (they queue themselves and would wait for it): call them between jobs, as <saliency-view> does.
 */
export async function exclusive<T>(job: () => Promise<T>): Promise<T> {
  const gpu = await sharedGpu();
  return gpu.exclusive(job);
}

/** Where a model reference points: a bundled name, or an absolute URL (resolved against the page). */
export function resolveModelRef(ref: string): { bundled: string } | { url: URL; loader: ModelLoader } {
  const name = ref.trim();
  if (!name) throw new ArgumentError('no model given: set the model attribute to a bundled name or a model URL');
  if (BUNDLED_MODELS[name]) return { bundled: name };
  const base = (globalThis as { document?: { baseURI: string } }).document?.baseURI ?? (globalThis as { location?: { href: string } }).location?.href;
  let url: URL;
  try {
    url = new URL(name, base);
  } catch {
    throw new ArgumentError(`model '${name}' is neither a bundled model (${Object.keys(BUNDLED_MODELS).join(', ')}) nor a URL`);
  }
  const path = url.pathname.toLowerCase();
  const entry = loaders.find((l) => path.endsWith(l.suffix));
  if (!entry) {
    throw new ArgumentError(
      `model '${name}' is neither a bundled model (${Object.keys(BUNDLED_MODELS).join(', ')}) nor a URL ending in ${modelSuffixes().join(', ')}`,
    );
  }
  return { url, loader: entry.load };
}

const cache = new Map<string, Promise<ViewModel>>();

/**
 * The model named `ref`, loaded once per page. Call inside `exclusive` (loading creates tensors,
 * which must not land in another job's scope). A failed load is forgotten, so it can be retried.
 */
export function cachedModel(gpu: Gpu, ref: string, options: ViewModelOptions = {}): Promise<ViewModel> {
  const where = resolveModelRef(ref);
  if (options.normalize && ('bundled' in where || !where.url.pathname.toLowerCase().endsWith('.onnx'))) {
    throw new ArgumentError(`normalize applies to ONNX models; '${ref}' is not one`);
  }
  const key = ('bundled' in where ? `bundled:${where.bundled}` : where.url.href) + (options.normalize ? ` normalize:${JSON.stringify(options.normalize)}` : '');
  let p = cache.get(key);
  if (!p) {
    p = 'bundled' in where ? loadModel(gpu, where.bundled as BundledModelName) : where.loader(gpu, where.url, options);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** Frees every cached model (the next use loads it again), once the jobs queued before have run. */
export async function clearModelCache(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  const free = async () => {
    for (const p of all) (await p.catch(() => null))?.dispose();
  };
  const gpu = gpuPromise ? await gpuPromise.catch(() => null) : null;
  if (gpu) await gpu.exclusive(free);
  else await free();
}

const labelsCache = new Map<string, Promise<readonly string[]>>();

/**
 * Class names named by a page: 'imagenet' (the built-in 1,000 ImageNet names) or the URL of a
 * .txt (one per line) or .json labels file (resolved against the page), fetched once.
 */
export function cachedLabels(ref: string): Promise<readonly string[]> {
  const name = ref.trim();
  let key = name;
  let load: () => Promise<readonly string[]>;
  if (name === 'imagenet') load = imagenetClasses;
  else {
    const base = (globalThis as { document?: { baseURI: string } }).document?.baseURI ?? (globalThis as { location?: { href: string } }).location?.href;
    let url: URL;
    try {
      url = new URL(name, base);
    } catch {
      throw new ArgumentError(`labels '${name.slice(0, 200)}' is neither 'imagenet' nor a URL`);
    }
    key = url.href;
    load = async () => parseLabels(await fetchBytes(url, 'labels file'), url.pathname);
  }
  let p = labelsCache.get(key);
  if (!p) {
    p = load();
    labelsCache.set(key, p);
    p.catch(() => labelsCache.delete(key));
  }
  return p;
}
