/**
 * ONNX Resize (opsets 10–19) and Upsample (7–9) of the two spatial axes, nearest and linear, with
 * every coordinate_transformation_mode but tf_crop_and_resize and every nearest_mode, the maps
 * computed as ONNX Runtime does (the resize op's ONNX options), also from given scales. Upsample
 * is Resize with asymmetric coordinates and floor rounding. Cubic interpolation, antialiasing and
 * keep_aspect_ratio_policy other than stretch get a FormatError that names them.
 */
import * as ops from '../../../autodiff/ops/index.js';
import { COORDINATE_TRANSFORMATION_MODES, NEAREST_MODES, type CoordinateTransformationMode, type NearestMode, type ResizeOptions } from '../../../kernels/resize.js';
import { FormatError } from '../../../runtime/errors.js';
import type { OpResult } from '../../graph/executor.js';
import { intValues, optionalConst, runtimeInput, type OnnxContext } from './context.js';

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
  let givenScales: [number, number] | undefined;
  const size2 = (v: number[]) => (v.length === 4 ? v.slice(2) : v.length === 2 ? v : null);
  if (sizes) {
    const s = size2(sizes);
    if (!s || (sizes.length === 4 && (sizes[1] !== x[1] || (sizes[0] !== x[0] && x[0] !== -1)))) throw new FormatError(`${c.where}: sizes ${JSON.stringify(sizes)} may change only the spatial axes of [${x.join(', ')}]`);
    out = [s[0]!, s[1]!];
  } else if (scales) {
    const s = size2(scales);
    if (!s || (scales.length === 4 && (scales[0] !== 1 || scales[1] !== 1))) throw new FormatError(`${c.where}: scales ${JSON.stringify(scales)} may change only the spatial axes`);
    if (!s.every((v) => Number.isFinite(v) && v > 0)) throw new FormatError(`${c.where}: scales ${JSON.stringify(s)} must be positive numbers`);
    out = [Math.floor(h * s[0]!), Math.floor(w * s[1]!)];
    givenScales = [s[0]!, s[1]!]; // the coordinate maps divide by these, as ONNX Runtime's do
  } else throw new FormatError(`${c.where}: neither scales nor sizes are given`);
  if (!(out[0] >= 1 && out[1] >= 1) || out[0] * out[1] * Math.max(1, x[1]!) > c.limits.maxElements) throw new FormatError(`${c.where}: the output size ${out.join('×')} is not valid`);
  if (mode !== 'linear' && mode !== 'nearest') throw new FormatError(`${c.where}: mode '${mode}' is not supported (nearest, linear)`);
  if (!(COORDINATE_TRANSFORMATION_MODES as readonly string[]).includes(ctm)) throw new FormatError(`${c.where}: coordinate_transformation_mode '${ctm}' is not supported (${COORDINATE_TRANSFORMATION_MODES.join(', ')})`);
  if (!(NEAREST_MODES as readonly string[]).includes(nearestMode)) throw new FormatError(`${c.where}: nearest_mode '${nearestMode}' is not supported (${NEAREST_MODES.join(', ')})`);
  const options: ResizeOptions = {
    mode: mode === 'linear' ? 'bilinear' : 'nearest',
    coordinateTransformationMode: ctm as CoordinateTransformationMode,
    nearestMode: nearestMode as NearestMode,
    ...(givenScales ? { scales: givenScales } : {}),
  };
  return { shape: [x[0]!, x[1]!, out[0], out[1]], type: 'resize', spec: { size: out, ...options }, run: ([t]) => ops.resize(t!, out, options) };
}
