/** A little DOM helper for the view's modules (plain DOM, no framework). */

/**
 * `<tag>` with `props` as attributes ('text' sets the text, 'class' the class; undefined values are
 * skipped) and `children` appended (null skipped).
 */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<Record<string, string>> = {}, ...children: (Node | string | null)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null) e.append(c);
  return e;
}
