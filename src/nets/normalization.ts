/**
 * Per-channel input normalisation for imported models trained on normalised images (torchvision's
 * (x − mean)/std on pixels in [0, 1]): the values and their text form, shared by the CLI's
 * --normalize and the web component's `normalize` attribute.
 */
import { ArgumentError } from '../runtime/errors.js';
import type { InputNormalization } from './graph/executor.js';

export type { InputNormalization };

/** ImageNet's per-channel mean and standard deviation of pixels in [0, 1] (torchvision's). */
export const IMAGENET_NORMALIZATION: InputNormalization = Object.freeze({ mean: Object.freeze([0.485, 0.456, 0.406]), std: Object.freeze([0.229, 0.224, 0.225]) });

/** 'imagenet', 'none' (undefined), or 'm1,m2,m3/s1,s2,s3' (one value each for a grey model). */
export function parseNormalization(text: string | undefined, what = 'normalize'): InputNormalization | undefined {
  const v = text?.trim();
  if (v === undefined || v === '' || v === 'none') return undefined;
  if (v === 'imagenet') return IMAGENET_NORMALIZATION;
  const parts = v.split('/');
  const nums = parts.map((p) => p.split(',').map((x) => (/^\s*-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(x) ? Number(x) : NaN)));
  if (parts.length !== 2 || nums.some((l) => !l.length || l.some((x) => !Number.isFinite(x))) || nums[1]!.some((x) => x <= 0) || nums[0]!.length !== nums[1]!.length) {
    throw new ArgumentError(`${what} must be 'imagenet', 'none' or means/stds such as 0.5,0.5,0.5/0.25,0.25,0.25 (stds > 0), got '${v.slice(0, 100)}'`);
  }
  return { mean: nums[0]!, std: nums[1]! };
}
