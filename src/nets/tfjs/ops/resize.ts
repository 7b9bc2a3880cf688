/** TF.js resizing: ResizeBilinear and ResizeNearestNeighbor (align_corners, half_pixel_centers, or TF's legacy map). */
import * as ops from '../../../autodiff/ops/index.js';
import { FormatError } from '../../../runtime/errors.js';
import { constInput, runtimeInput, type TfjsOpBuilder } from './context.js';

export function resize(mode: 'bilinear' | 'nearest'): TfjsOpBuilder {
  return (c) => {
    const x = runtimeInput(c, 0, 4);
    const size = [...constInput(c, 1, 'size').data] as [number, number];
    if (size.length !== 2 || size.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new FormatError(`${c.where}: size ${JSON.stringify(size)} must be two positive integers`);
    const alignCorners = c.attrs.bool('align_corners', false);
    const halfPixelCenters = c.attrs.bool('half_pixel_centers', false);
    if (alignCorners && halfPixelCenters) throw new FormatError(`${c.where}: align_corners and half_pixel_centers cannot both be true`);
    return {
      shape: [x[0]!, size[0], size[1], x[3]!],
      type: 'resize',
      run: ([t]) => ops.resize(t!, size, { mode, alignCorners, halfPixelCenters: alignCorners || halfPixelCenters }),
    };
  };
}
