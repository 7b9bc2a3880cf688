/**
 * The demo page (`npm run web`): pick or drop an image, choose a model and methods, and see the
 * maps side by side, one <saliency-view> per method. Nothing is fetched from outside the server.
 *
 * The server (scripts/web.mjs) lists trained and imported models in /models/index.json and sample
 * images in /samples/index.json; served from elsewhere, the page works without them.
 *
 * With "deletion and insertion AUC" checked, each classifier map gets its deletion and insertion
 * AUC (docs/metrics.md) underneath, computed on the page's GPU from the map and the model input
 * the view used.
 *
 * URL parameters preset the form: ?image=<url>&model=<name or url>&methods=gradCam,guidedBackprop
 * &target=top&layer=relu4&crop=x,y,w,h&samples=50&detector=<name or url>&auc=1.
 *
 * The second view, "Inside the network" (web/inside/, ?view=inside&method=…&layer=…&step=…), shows
 * one method's trace for the same image, model and target.
 */
import { BUNDLED_MODELS, FASHION_CLASSES } from '../src/nets/zoo.js';
import { tensor } from '../src/runtime/tensor.js';
import { metrics } from '../src/saliency/index.js';
import { METHODS, methodByName, type MethodName } from '../src/saliency/methods.js';
import { cachedModel, exclusive, sharedGpu, type ImageInput, type SaliencyResultDetail, type SaliencyView } from '../src/web/index.js';
import { mountInside } from './inside/page.js';

type ViewMethod = MethodName;

/** An entry of /models/index.json: a trained .safetensors in models/, or an imported TF.js model. */
interface ListedModel {
  name: string;
  kind: 'safetensors' | 'tfjs';
  file: string;
  description?: string;
}
/** An entry of /samples/index.json. */
type Sample =
  | { kind: 'fashion-mnist'; index: number; label: number; file: string }
  | { kind: 'scene'; index: number; objects: number[]; file: string }
  | { kind: 'photo'; name: string; file: string };

function sampleLabel(s: Sample): string {
  if (s.kind === 'fashion-mnist') return `${FASHION_CLASSES[s.label] ?? s.label} (Fashion-MNIST test image ${s.index})`;
  if (s.kind === 'scene') return `detector scene ${s.index}: ${s.objects.map((l) => FASHION_CLASSES[l] ?? l).join(', ')} (for D-RISE)`;
  return `photo: ${s.name}`;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const results = $<HTMLElement>('results');
const modelSelect = $<HTMLSelectElement>('model');
const modelUrl = $<HTMLInputElement>('model-url');
const target = $<HTMLInputElement>('target');
const layer = $<HTMLInputElement>('layer');
const crop = $<HTMLInputElement>('crop');
const samplesInput = $<HTMLInputElement>('samples');
const noise = $<HTMLInputElement>('noise');
const masks = $<HTMLInputElement>('masks');
const detector = $<HTMLInputElement>('detector');
const colormap = $<HTMLSelectElement>('colormap');
const methodsBox = $<HTMLFieldSetElement>('methods');
const preview = $<HTMLImageElement>('preview');
const summary = $<HTMLElement>('summary');
const aucBox = $<HTMLInputElement>('auc');

/** Checked at first: every classifier method that needs nothing of the model (CAM needs a GAP head). */
const DEFAULT_METHODS: ViewMethod[] = METHODS.filter((m) => m.kind === 'classifier' && m.requires === null).map((m) => m.name);

let image: ImageInput | null = null;
let previewUrl: string | null = null;
let trained = new Set<string>();
let imported: ListedModel[] = [];
const views = new Map<ViewMethod, SaliencyView>();
const checkboxes = new Map<ViewMethod, HTMLInputElement>();
/** Each view sits in a figure with a caption for its AUCs. */
const figures = new Map<ViewMethod, { figure: HTMLElement; caption: HTMLElement; key: string; result: SaliencyResultDetail | null }>();

async function getJson<T>(url: string, fallback: T): Promise<T> {
  try {
    const res = await fetch(url);
    return res.ok ? ((await res.json()) as T) : fallback;
  } catch {
    return fallback;
  }
}

function isUrl(ref: string): boolean {
  return /[/.]/.test(ref);
}

function detectorAvailable(): boolean {
  const ref = detector.value.trim();
  return ref !== '' && (isUrl(ref) || trained.has(ref));
}

function modelRef(): string {
  return modelUrl.value.trim() || modelSelect.value;
}

// ------------------------------------------------------------------------------------------------
// The form

function option(value: string, text: string): HTMLOptionElement {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

function buildModelSelect(): void {
  const bundled = document.createElement('optgroup');
  bundled.label = 'bundled (Fashion-MNIST, 28×28)';
  bundled.append(
    ...Object.keys(BUNDLED_MODELS)
      .filter((name) => !name.includes('detector'))
      .map((name) => option(name, trained.has(name) ? name : `${name} (not trained yet)`)),
  );
  modelSelect.replaceChildren(bundled);
  if (imported.length) {
    const group = document.createElement('optgroup');
    group.label = 'imported TF.js graph models';
    group.append(...imported.map((m) => option(m.file, m.description ?? m.name)));
    modelSelect.append(group);
  }
  const asked = params.get('model');
  if (asked && [...modelSelect.options].some((o) => o.value === asked)) modelSelect.value = asked;
  else if (asked) modelUrl.value = asked;
  else {
    // A trained bundled model, else an imported one, else the first (which says how to train it).
    const first = [...modelSelect.options].find((o) => trained.has(o.value)) ?? [...modelSelect.options].find((o) => o.value.endsWith('.json'));
    if (first) modelSelect.value = first.value;
  }
  $<HTMLDataListElement>('classes').replaceChildren(
    ...['top', ...FASHION_CLASSES.map((c, i) => `${i}`)].map((v) => {
      const o = document.createElement('option');
      o.value = v;
      if (v !== 'top') o.label = FASHION_CLASSES[Number(v)]!;
      return o;
    }),
  );
}

function buildMethods(): void {
  const asked = params.get('methods')?.split(',').map((m) => m.trim()) ?? DEFAULT_METHODS;
  for (const m of METHODS) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = m.name;
    box.checked = asked.includes(m.name);
    box.addEventListener('change', sync);
    label.append(box, ` ${m.label}`);
    const note = document.createElement('span');
    note.className = 'note';
    if (m.kind === 'classifier' && m.requires) note.textContent = ` — needs ${m.requires}`;
    label.append(note);
    methodsBox.append(label);
    checkboxes.set(m.name, box);
  }
  updateDrise();
}

/** D-RISE needs a trained detector: disabled (with the reason) until one is there. */
function updateDrise(): void {
  const box = checkboxes.get('drise')!;
  const ok = detectorAvailable();
  box.disabled = !ok;
  if (!ok) box.checked = false;
  box.parentElement!.classList.toggle('disabled', !ok);
  (box.parentElement!.querySelector('.note') as HTMLElement).textContent = ok
    ? ` — explains a detection of ${detector.value.trim()} (pick it under the map)`
    : ' — needs the fashion-detector weights (npm run train -- --model fashion-detector) or a detector URL';
}

function setImage(source: ImageInput, shown: string): void {
  image = source;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = source instanceof Blob ? URL.createObjectURL(source) : null;
  preview.src = previewUrl ?? shown;
  preview.hidden = false;
  sync();
}

// ------------------------------------------------------------------------------------------------
// The views: one <saliency-view> per checked method, in the methods' order

function setAttr(el: HTMLElement, name: string, value: string): void {
  if (value === '') el.removeAttribute(name);
  else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

function sync(): void {
  inside.inputsChanged();
  updateDrise();
  modelSelect.disabled = modelUrl.value.trim() !== ''; // the URL, when given, is the model
  const chosen = METHODS.map((m) => m.name).filter((m) => checkboxes.get(m)!.checked);
  for (const [method] of views) {
    if (!chosen.includes(method)) {
      figures.get(method)!.figure.remove();
      figures.delete(method);
      views.delete(method);
    }
  }
  if (!image || inside.active()) return; // the views run (again) when they are shown
  for (const method of chosen) {
    let view = views.get(method);
    if (!view) {
      view = document.createElement('saliency-view');
      view.setAttribute('method', method);
      views.set(method, view);
      const figure = document.createElement('figure');
      const caption = document.createElement('figcaption');
      caption.className = 'auc';
      figure.append(view, caption);
      figures.set(method, { figure, caption, key: '', result: null });
    }
    // Each view gets the inputs its method reads (the registry's `options`).
    const m = methodByName(method);
    const reads = (option: string) => (m.options as readonly string[]).includes(option);
    setAttr(view, 'model', m.kind === 'detector' ? detector.value.trim() : modelRef());
    setAttr(view, 'target', m.kind === 'detector' ? '' : target.value.trim() || 'top');
    setAttr(view, 'layer', reads('layer') ? layer.value.trim() : '');
    setAttr(view, 'samples', reads('samples') ? samplesInput.value : '');
    setAttr(view, 'noise-level', reads('noiseLevel') ? noise.value : '');
    setAttr(view, 'masks', reads('masks') ? masks.value : '');
    setAttr(view, 'crop', crop.value.trim());
    setAttr(view, 'colormap', colormap.value);
    if (view.image !== image) view.image = image;
    // Inputs changed: the view runs again, and the AUCs under it are stale until its next result.
    const f = figures.get(method)!;
    const key = JSON.stringify(view.getAttributeNames().map((n) => [n, view!.getAttribute(n)])) + imageKey();
    if (key !== f.key) {
      f.key = key;
      showAuc(method, null);
    }
  }
  // Keep the registry's order, moving only cards out of place: a moved element is
  // disconnected, which cancels its run.
  chosen.forEach((method, i) => {
    const figure = figures.get(method)!.figure;
    if (results.children[i] !== figure) results.insertBefore(figure, results.children[i] ?? null);
  });
  updateSummary();
}

/** How many cards have their result for the current inputs (a card's state is reset when they change). */
function updateSummary(last?: string): void {
  const states = [...views.values()].map((v) => v.state);
  const done = states.filter((st) => st === 'done').length;
  const failed = states.filter((st) => st === 'failed').length;
  const parts = [`${done}/${views.size} done`];
  if (failed) parts.push(`${failed} failed`);
  if (last && done) parts.push(last);
  summary.textContent = views.size ? parts.join(' · ') : '';
}


let imageCount = 0;
const imageIds = new WeakMap<object, number>();
/** Tells images apart for the staleness key (a File, a URL string, …). */
function imageKey(): string {
  if (image === null) return '';
  if (typeof image === 'string') return image;
  if (!imageIds.has(image)) imageIds.set(image, ++imageCount);
  return `#${imageIds.get(image)}`;
}

// ------------------------------------------------------------------------------------------------
// Deletion and insertion AUC under each map

/**
 * Shows the AUCs of `result` (null: none yet) under the method's map when the box is checked. The
 * metrics run on the page's GPU, queued like the views' own work, for the map and model input the
 * view used.
 */
async function showAuc(method: ViewMethod, result: SaliencyResultDetail | null): Promise<void> {
  const f = figures.get(method);
  if (!f) return;
  f.result = result;
  f.caption.textContent = '';
  if (!aucBox.checked || !result) return;
  const entry = methodByName(method);
  if (entry.kind !== 'classifier') {
    f.caption.textContent = 'AUC: for classifier maps only';
    return;
  }
  f.caption.textContent = 'deletion / insertion AUC: computing…';
  const modelRef = views.get(method)?.getAttribute('model') ?? '';
  try {
    const gpu = await sharedGpu();
    const [del, ins] = await exclusive(async () => {
      const model = await cachedModel(gpu, modelRef);
      const x = tensor(gpu, result.input, result.inputShape);
      try {
        const map = { data: result.map, shape: result.shape };
        const options = { target: result.target, kind: entry.display };
        return [await metrics.deletion(model, x, map, options), await metrics.insertion(model, x, map, options)];
      } finally {
        x.dispose();
      }
    });
    if (figures.get(method)?.result !== result) return; // a newer result, or the view is gone
    f.caption.dataset.deletion = String(del[0]!.auc);
    f.caption.dataset.insertion = String(ins[0]!.auc);
    f.caption.textContent = `deletion AUC ${del[0]!.auc.toFixed(3)} ↓ · insertion AUC ${ins[0]!.auc.toFixed(3)} ↑`;
  } catch (e) {
    if (figures.get(method)?.result === result) f.caption.textContent = `AUC: ${(e as Error).message}`;
  }
}

aucBox.addEventListener('change', () => {
  for (const [method, view] of views) void showAuc(method, view.result ?? null);
});

results.addEventListener('saliency-result', (e) => {
  updateSummary(`${e.detail.method} ${e.detail.ms.toFixed(0)} ms`);
  if (views.get(e.detail.method) === e.target) void showAuc(e.detail.method, e.detail);
});
results.addEventListener('saliency-error', (e) => {
  updateSummary();
  if (views.get(e.detail.method as ViewMethod) === e.target) void showAuc(e.detail.method as ViewMethod, null);
});

// ------------------------------------------------------------------------------------------------
// Inputs

const fileInput = $<HTMLInputElement>('file');
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) setImage(file, file.name);
});

const drop = $<HTMLElement>('drop');
for (const type of ['dragenter', 'dragover'] as const) {
  document.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
}
document.addEventListener('dragleave', () => drop.classList.remove('over'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = [...(e.dataTransfer?.files ?? [])].find((f) => f.type.startsWith('image/')) ?? e.dataTransfer?.files[0];
  if (file) setImage(file, file.name);
});

const sampleSelect = $<HTMLSelectElement>('sample');
sampleSelect.addEventListener('change', () => {
  if (sampleSelect.value) setImage(sampleSelect.value, sampleSelect.value);
});

for (const el of [modelSelect, modelUrl, target, layer, crop, samplesInput, noise, masks, detector, colormap]) el.addEventListener('change', sync);
$<HTMLButtonElement>('rerun').addEventListener('click', () => {
  for (const [method, view] of views) {
    void showAuc(method, null);
    view.run().catch(() => undefined);
  }
});
$<HTMLFormElement>('controls').addEventListener('submit', (e) => e.preventDefault());

// ------------------------------------------------------------------------------------------------
// The second view: inside the network, for the same image, model and target

const inside = mountInside({
  params,
  inputs: () => ({ model: modelRef(), image, imageUrl: typeof image === 'string' ? image : null, crop: crop.value, target: target.value }),
  onView: () => sync(),
});

// ------------------------------------------------------------------------------------------------
// Start

sharedGpu().then(
  (gpu) => {
    $<HTMLElement>('adapter').textContent = `WebGPU: ${gpu.adapter.name}${gpu.adapter.isSoftware ? ' (software)' : ''}`;
  },
  (e: Error) => {
    $<HTMLElement>('adapter').textContent = 'WebGPU: not available';
    const box = $<HTMLElement>('nogpu');
    box.textContent = `This page needs WebGPU, and this browser does not provide it.\n${e.message}`;
    box.classList.add('shown');
  },
);

const [models, samples] = await Promise.all([getJson<ListedModel[]>('/models/index.json', []), getJson<Sample[]>('/samples/index.json', [])]);
trained = new Set(models.filter((m) => m.kind === 'safetensors').map((m) => m.name));
imported = models.filter((m) => m.kind === 'tfjs');
if (params.get('detector')) detector.value = params.get('detector')!;
if (params.get('target')) target.value = params.get('target')!;
if (params.get('layer')) layer.value = params.get('layer')!;
if (params.get('crop')) crop.value = params.get('crop')!;
if (params.get('samples')) samplesInput.value = params.get('samples')!;
aucBox.checked = params.get('auc') === '1';
buildModelSelect();
buildMethods();
sampleSelect.append(
  ...samples.map((s) => option(s.file, sampleLabel(s))),
);
const askedImage = params.get('image');
if (askedImage) setImage(askedImage, askedImage);
else sync();
document.body.dataset.ready = 'true';
