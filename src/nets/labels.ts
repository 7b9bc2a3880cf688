/**
 * Class names for any model: from a text file (one name per line), a JSON file (a list of names,
 * or an object from class index to name), or the built-in ImageNet list ('imagenet': the 1,000
 * names most ImageNet classifiers use, from @tensorflow-models/mobilenet, Apache-2.0). Browser-safe:
 * the caller reads the file; the ImageNet list is loaded on first use.
 */
import { ArgumentError, FormatError } from '../runtime/errors.js';

/** Limits on a labels file from a stranger. */
export const LABEL_LIMITS = Object.freeze({ maxBytes: 16 * 2 ** 20, maxLabels: 1_000_000, maxLength: 1000 });

/** The 1,000 ImageNet class names (loaded on first use). */
export async function imagenetClasses(): Promise<readonly string[]> {
  return (await import('./imagenet-classes.generated.js')).IMAGENET_CLASSES;
}

/**
 * Parses class names from a file's bytes. `name` (the file name) picks the format: '.json' → JSON,
 * anything else → one name per line (blank lines at the end ignored, a '\r' before each '\n'
 * allowed). Names are trimmed and cut at LABEL_LIMITS.maxLength characters.
 */
export function parseLabels(bytes: Uint8Array, name: string): string[] {
  if (bytes.byteLength > LABEL_LIMITS.maxBytes) throw new FormatError(`labels file ${name} is ${bytes.byteLength} bytes, more than the limit of ${LABEL_LIMITS.maxBytes}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new FormatError(`labels file ${name} is not UTF-8 text`);
  }
  let labels: unknown[];
  if (/\.json$/i.test(name)) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FormatError(`labels file ${name} is not valid JSON (${(e as Error).message})`);
    }
    if (Array.isArray(json)) labels = json;
    else if (json && typeof json === 'object') {
      // { "0": "tench", "1": "goldfish", … }: every index 0..K−1 once, nothing else.
      const entries = Object.entries(json as Record<string, unknown>);
      if (entries.length > LABEL_LIMITS.maxLabels) throw new FormatError(`labels file ${name} has more than ${LABEL_LIMITS.maxLabels} labels`);
      const byIndex = new Map<number, unknown>();
      for (const [k, v] of entries) {
        const i = /^(0|[1-9]\d*)$/.test(k) ? Number(k) : NaN;
        if (!(i < entries.length)) throw new FormatError(`labels file ${name}: key '${k.slice(0, 50)}' is not a class index 0..${entries.length - 1}`);
        byIndex.set(i, v);
      }
      labels = Array.from({ length: entries.length }, (_, i) => byIndex.get(i));
    } else throw new FormatError(`labels file ${name} must hold a list of names or an object from class index to name`);
  } else {
    labels = text.split('\n').map((l) => l.replace(/\r$/, ''));
    while (labels.length && (labels[labels.length - 1] as string).trim() === '') labels.pop();
  }
  if (!labels.length) throw new FormatError(`labels file ${name} holds no labels`);
  if (labels.length > LABEL_LIMITS.maxLabels) throw new FormatError(`labels file ${name} has ${labels.length} labels, more than the limit of ${LABEL_LIMITS.maxLabels}`);
  return labels.map((l, i) => {
    if (typeof l !== 'string' && typeof l !== 'number') throw new FormatError(`labels file ${name}: label ${i} is not a string`);
    const s = String(l).trim();
    return s.length > LABEL_LIMITS.maxLength ? `${s.slice(0, LABEL_LIMITS.maxLength)}…` : s;
  });
}

/** Checks that `labels` name every output of a model with `outputs` values per image. */
export function checkLabels(labels: readonly string[], outputs: number, model: string, source: string): void {
  if (labels.length !== outputs) {
    throw new ArgumentError(`${source} has ${labels.length} labels, but model '${model}' has ${outputs} outputs`);
  }
}
