/**
 * ONNX Resize (opsets 10–19) and Upsample (7–9) of the two spatial axes, nearest and linear, for the
 * coordinate maps our resize kernel computes exactly:
 *
 * - linear: half_pixel, pytorch_half_pixel (output sides > 1), align_corners, asymmetric;
 * - nearest: asymmetric + floor (PyTorch's 'nearest'), half_pixel + round_prefer_ceil and
 *   tf_half_pixel_for_nn + floor (PyTorch's 'nearest-exact'), align_corners + round_prefer_ceil,
 *   and the round_prefer_floor variants where no output pixel falls exactly between two inputs.
 *
 * Anything else (cubic, tf_crop_and_resize, antialias, a scale that is not out/in) gets a
 * FormatError that names it.
 */
import * as ops from '../../../autodiff/ops/index.js';
import type { ResizeOptions } from '../../../kernels/resize.js';
import { FormatError } from '../../../runtime/errors.js';
import type { OpResult } from '../../graph/executor.js';
import { intValues, optionalConst, runtimeInput, type OnnxContext } from './context.js';

/**
 * True when some output pixel's source coordinate lies exactly halfway between two inputs, where
 * round-half-down and round-half-up differ: twice the coordinate is an odd integer.
 * half_pixel: 2x = ((2o + 1)·n − m)/m; align_corners: 2x = 2o·(n − 1)/(m − 1).
 */
function hasTies(n: number, m: number, mode: 'half_pixel' | 'align_corners'): boolean {
  for (let o = 0; o < m; o++) {
    const [num, den] = mode === 'half_pixel' ? [(2 * o + 1) * n - m, m] : [2 * o * (n - 1), m - 1];
    if (den > 0 && num % den === 0 && Math.abs(num / den) % 2 === 1) return true;
  }
  return false;
}

export function resize(c: OnnxContext): OpResult {
  const x = runtimeInput(c, 0, 4);
  const [h, w] = [x[2]!, x[3]!];
  const upsample = c.op === 'Upsample';
  let mode = c.attrs.string('mode', 'nearest');
  if (mode === 'bilinear') mode = 'linear';
  const ctm = upsample ? 'asymmetric' : c.attrs.string('coordinate_transformation_mode', c.opset < 11 ? 'asymmetric' : 'half_pixel');
  const nearestMode = upsample || c.opset < 11 ? 'floor' : c.attrs.string('nearest_mode', 'round_prefer_floor');
  if (c.attrs.int('antialias', 0) !== 0) throw new FormatError(`${c.where}: antialias is not supported`);
  if (c.attrs.has('axes')) {
    const axes = c.attrs.ints('axes').map((a) => (a < 0 ? a + 4 : a));
    if (axes.join() !== '2,3') throw new FormatError(`${c.where}: resizing axes ${JSON.stringify(axes)} is not supported (the two spatial axes only)`);
  }
  const policy = c.attrs.string('keep_aspect_ratio_policy', 'stretch');
  if (policy !== 'stretch') throw new FormatError(`${c.where}: keep_aspect_ratio_policy '${policy}' is not supported`);
  // Scales: an attribute (Upsample 7), input 1 (Upsample 9, Resize 10), input 2 (Resize 11+); sizes: input 3.
  let scales: number[] | undefined;
  let sizes: number[] | undefined;
  if (upsample && c.opset < 9) scales = c.attrs.floats('scales');
  else {
    const s = optionalConst(c, upsample || c.opset < 11 ? 1 : 2, 'scales');
    if (s && s.data.length) scales = [...s.data];
    const z = c.opset >= 11 ? optionalConst(c, 3, 'sizes') : undefined;
    if (z && z.data.length) sizes = intValues(z, c, 'sizes');
  }
  let out: [number, number];
  const size2 = (v: number[]) => (v.length === 4 ? v.slice(2) : v.length === 2 ? v : null);
  if (sizes) {
    const s = size2(sizes);
    if (!s || (sizes.length === 4 && (sizes[1] !== x[1] || (sizes[0] !== x[0] && x[0] !== -1)))) throw new FormatError(`${c.where}: sizes ${JSON.stringify(sizes)} may change only the spatial axes of [${x.join(', ')}]`);
    out = [s[0]!, s[1]!];
  } else if (scales) {
    const s = size2(scales);
    if (!s || (scales.length === 4 && (scales[0] !== 1 || scales[1] !== 1))) throw new FormatError(`${c.where}: scales ${JSON.stringify(scales)} may change only the spatial axes`);
    out = [Math.floor(h * s[0]!), Math.floor(w * s[1]!)];
    // The coordinate map uses the scale itself; ours uses out/in: they must agree.
    if (Math.abs(out[0] / h - s[0]!) > 1e-6 * s[0]! || Math.abs(out[1] / w - s[1]!) > 1e-6 * s[1]!) {
      throw new FormatError(`${c.where}: scales ${JSON.stringify(s)} do not give whole output sizes for ${h}×${w}`);
    }
  } else throw new FormatError(`${c.where}: neither scales nor sizes are given`);
  if (!(out[0] >= 1 && out[1] >= 1) || out[0] * out[1] * Math.max(1, x[1]!) > c.limits.maxElements) throw new FormatError(`${c.where}: the output size ${out.join('×')} is not valid`);
  let options: ResizeOptions;
  const unsupported = () => new FormatError(`${c.where}: mode '${mode}' with coordinate_transformation_mode '${ctm}'${mode === 'nearest' ? ` and nearest_mode '${nearestMode}'` : ''} is not supported for ${h}×${w} → ${out.join('×')}`);
  const ties = (m: 'half_pixel' | 'align_corners') => hasTies(h, out[0], m) || hasTies(w, out[1], m);
  if (mode === 'linear') {
    if (ctm === 'half_pixel' || (ctm === 'pytorch_half_pixel' && out[0] > 1 && out[1] > 1)) options = { mode: 'bilinear', halfPixelCenters: true };
    else if (ctm === 'align_corners') options = { mode: 'bilinear', alignCorners: true };
    else if (ctm === 'asymmetric') options = { mode: 'bilinear', halfPixelCenters: false };
    else throw unsupported();
  } else if (mode === 'nearest') {
    if (ctm === 'asymmetric' && nearestMode === 'floor') options = { mode: 'nearest', halfPixelCenters: false };
    else if ((ctm === 'half_pixel' || ctm === 'pytorch_half_pixel') && (nearestMode === 'round_prefer_ceil' || (nearestMode === 'round_prefer_floor' && !ties('half_pixel'))) && !(ctm === 'pytorch_half_pixel' && (out[0] === 1 || out[1] === 1)))
      options = { mode: 'nearest', halfPixelCenters: true };
    else if (ctm === 'tf_half_pixel_for_nn' && nearestMode === 'floor') options = { mode: 'nearest', halfPixelCenters: true };
    else if (ctm === 'align_corners' && (nearestMode === 'round_prefer_ceil' || (nearestMode === 'round_prefer_floor' && !ties('align_corners')))) options = { mode: 'nearest', alignCorners: true };
    else throw unsupported();
  } else throw new FormatError(`${c.where}: mode '${mode}' is not supported (nearest, linear)`);
  return { shape: [x[0]!, x[1]!, out[0], out[1]], type: 'resize', spec: { size: out, ...options }, run: ([t]) => ops.resize(t!, out, options) };
}
