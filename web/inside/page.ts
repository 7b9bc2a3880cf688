/**
 * Wires the "Inside the network" view (view.ts) into the demo page: the two tabs ("Methods side by
 * side" and "Inside the network"), the URL (the view's whole state lives there, so a link restores
 * it; see state.ts), and the keys that step through the backward pass (← →, Home, End).
 *
 * The page's form (image, crop, model, target) is shared by both views; the page tells this module
 * whenever it changes (`inputsChanged`), and asks `active()` before running its own views.
 */
import { clearInsideState, readInsideState, writeInsideState } from './state.js';
import { InsideView, type InsideInputs } from './view.js';

export interface InsidePage {
  /** True while the "Inside the network" view is shown. */
  active(): boolean;
  /** The form changed: the view recomputes if it is shown (else when it is next shown). */
  inputsChanged(): void;
  readonly view: InsideView;
}

export type PageView = 'methods' | 'inside';

/**
 * Mounts the view into #inside and the tabs into #views. `inputs` reads the page's form (`imageUrl`:
 * the image's URL when it has one, for links); `onView` is called after the reader switches views.
 */
export function mountInside(options: {
  params: URLSearchParams;
  inputs: () => InsideInputs & { imageUrl: string | null };
  onView: (view: PageView) => void;
}): InsidePage {
  const root = document.getElementById('inside') as HTMLElement;
  const tabs = document.getElementById('views') as HTMLElement;
  let current: PageView = options.params.get('view') === 'inside' ? 'inside' : 'methods';

  const writeUrl = () => {
    const params = new URLSearchParams(location.search);
    if (current === 'inside') {
      const i = options.inputs();
      const set = (name: string, value: string) => (value ? params.set(name, value) : params.delete(name));
      set('model', i.model);
      set('image', i.imageUrl ?? '');
      set('crop', i.crop.trim());
      set('target', i.target.trim() === 'top' ? '' : i.target.trim());
      writeInsideState(params, view.currentState);
      shareNote.textContent = i.image && !i.imageUrl ? 'This image was dropped or chosen as a file, so a link to this page cannot carry it: pick a sample to share a link.' : '';
    } else {
      clearInsideState(params);
    }
    const query = params.toString();
    const url = `${location.pathname}${query ? `?${query}` : ''}${location.hash}`;
    if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(history.state, '', url);
  };

  const view = new InsideView(root, readInsideState(options.params), () => writeUrl());
  const shareNote = document.createElement('p');
  shareNote.className = 'note';
  root.prepend(shareNote);

  const buttons = new Map<PageView, HTMLButtonElement>();
  for (const [id, text] of [
    ['methods', 'Methods side by side'],
    ['inside', 'Inside the network'],
  ] as const) {
    const b = document.createElement('button');
    b.type = 'button';
    b.id = `view-${id}`;
    b.textContent = text;
    b.setAttribute('role', 'tab');
    b.addEventListener('click', () => show(id));
    buttons.set(id, b);
  }
  tabs.setAttribute('role', 'tablist');
  tabs.replaceChildren(...buttons.values());

  function apply(): void {
    document.body.dataset.view = current;
    root.hidden = current !== 'inside';
    for (const [id, b] of buttons) b.setAttribute('aria-selected', String(id === current));
  }

  function show(next: PageView): void {
    if (next === current) return;
    current = next;
    apply();
    writeUrl();
    if (current === 'inside') view.setInputs(options.inputs());
    options.onView(current);
  }

  document.addEventListener('keydown', (e) => {
    if (current !== 'inside' || e.altKey || e.ctrlKey || e.metaKey || e.defaultPrevented) return;
    const t = e.target as HTMLElement | null;
    if (t && (t.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName))) return;
    const moves: Record<string, () => void> = {
      ArrowRight: () => view.stepBy(1),
      ArrowLeft: () => view.stepBy(-1),
      Home: () => view.stepTo(1),
      End: () => view.stepTo(Infinity),
    };
    const move = Object.hasOwn(moves, e.key) ? moves[e.key] : undefined;
    if (!move) return;
    e.preventDefault();
    move();
  });

  apply();
  return {
    view,
    active: () => current === 'inside',
    inputsChanged() {
      if (current !== 'inside') return;
      view.setInputs(options.inputs());
      writeUrl();
    },
  };
}
