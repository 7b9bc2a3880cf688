/**
 * The pointing game (Zhang et al. 2016): a hit when the map's maximum lies inside the object's box,
 * grown by `tolerance` pixels on every side (default 0; the paper uses 15 at 224×224).
 * Accuracy = hits / (hits + misses). The maximum is the first pixel of the ranking (ties go to the
 * lower row-major index). Boxes are in pixel-edge coordinates of the map's H×W: [x1, y1, x2, y2]
 * covers columns x1 … x2−1 and rows y1 … y2−1, as `threshold` returns them.
 */
import { ArgumentError, ShapeError, formatShape } from '../../runtime/errors.js';
import type { Box } from '../display.js';
import { checkMap, mapValues, rankPixels, reduceMap, type MapInput, type MapKind } from './common.js';

export interface PointingGameOptions {
  /** Pixels to grow each box by on every side (default 0). */
  tolerance?: number;
  /** How the map is reduced to H×W (see MetricOptions.kind). */
  kind?: MapKind;
}

export interface PointingGameResult {
  hits: number;
  misses: number;
  /** hits / (hits + misses). */
  accuracy: number;
  /** Per image: hit or not, and where the maximum is ([x, y]). */
  images: { hit: boolean; point: [number, number] }[];
}

/**
 * `boxes[i]`: image i's object box, or several boxes (a hit in any of them counts), in the map's
 * pixels (the model input's, or the layer's for a map at a layer's resolution).
 */
export async function pointingGame(map: MapInput, boxes: readonly (Box | readonly Box[])[], options: PointingGameOptions = {}): Promise<PointingGameResult> {
  const metric = 'pointingGame';
  const { tolerance = 0, kind } = options;
  if (typeof tolerance !== 'number' || !(tolerance >= 0) || !Number.isFinite(tolerance)) {
    throw new ArgumentError(`${metric}: tolerance must be a finite number of pixels ≥ 0, got ${tolerance}`);
  }
  if (typeof map !== 'object' || map === null || !Array.isArray(map.shape) || map.shape.length !== 4) {
    throw new ShapeError(`${metric}: the map must be [N, C, H, W], got ${map && Array.isArray(map.shape) ? formatShape(map.shape) : typeof map}`);
  }
  const [n, c, h, w] = map.shape as [number, number, number, number];
  const resolved = checkMap(metric, map, { n, c, h, w }, kind);
  if (!Array.isArray(boxes) || boxes.length !== n) throw new ArgumentError(`${metric}: ${Array.isArray(boxes) ? boxes.length : 'no'} box entries for ${n} maps; give one per image`);
  const lists = boxes.map((b, i) => {
    const list = (Array.isArray(b[0]) ? b : [b]) as readonly Box[];
    if (list.length === 0) throw new ArgumentError(`${metric}: image ${i} has no box`);
    for (const box of list) {
      if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite) || box[2] <= box[0] || box[3] <= box[1]) {
        throw new ArgumentError(`${metric}: box ${JSON.stringify(box)} of image ${i} must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1`);
      }
    }
    return list;
  });
  const values = reduceMap(await mapValues(metric, map), resolved, h, w);
  const images = values.map((v, i) => {
    const p = rankPixels(v).order[0]!;
    const [x, y] = [p % w, Math.floor(p / w)];
    const hit = lists[i]!.some(([x1, y1, x2, y2]) => x >= x1 - tolerance && x < x2 + tolerance && y >= y1 - tolerance && y < y2 + tolerance);
    return { hit, point: [x, y] as [number, number] };
  });
  const hits = images.filter((im) => im.hit).length;
  return { hits, misses: n - hits, accuracy: hits / n, images };
}
