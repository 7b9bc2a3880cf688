/** Boxes [x1, y1, x2, y2] in pixels: overlap, non-maximum suppression, and mean average precision. */

export type Box = readonly [number, number, number, number] | readonly number[];

/** Intersection over union of two boxes (0 when either is empty). */
export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const area = (r: Box) => Math.max(0, r[2]! - r[0]!) * Math.max(0, r[3]! - r[1]!);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy non-maximum suppression: keeps the highest-scoring box, drops every box overlapping a
 * kept one by more than `iouThreshold`, and repeats. Returns kept indices, best first.
 */
export function nms(boxes: readonly Box[], scores: readonly number[], iouThreshold = 0.45): number[] {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const kept: number[] = [];
  for (const i of order) {
    if (kept.every((k) => iou(boxes[i]!, boxes[k]!) <= iouThreshold)) kept.push(i);
  }
  return kept;
}

export interface ScoredBox {
  box: Box;
  label: number;
  score: number;
}

/**
 * Mean average precision at an IoU threshold (PASCAL VOC style, all-point interpolation): per
 * class, detections sorted by score are matched greedily to unmatched ground truth of that class
 * in the same image; AP is the area under the precision envelope; the mean is over classes that
 * have ground truth.
 */
export function meanAveragePrecision(
  predictions: readonly (readonly ScoredBox[])[],
  truths: readonly { boxes: readonly Box[]; labels: readonly number[] }[],
  iouThreshold = 0.5,
): { map: number; perClass: Map<number, number> } {
  const classes = new Set<number>();
  for (const t of truths) for (const l of t.labels) classes.add(l);
  const perClass = new Map<number, number>();
  for (const c of classes) {
    const gtCount = truths.reduce((n, t) => n + t.labels.filter((l) => l === c).length, 0);
    const dets: { image: number; box: Box; score: number }[] = [];
    predictions.forEach((ps, image) => ps.forEach((p) => p.label === c && dets.push({ image, box: p.box, score: p.score })));
    dets.sort((a, b) => b.score - a.score);
    const used = truths.map((t) => t.labels.map(() => false));
    const tp: number[] = [];
    for (const d of dets) {
      // VOC: the detection is a true positive if its best-overlapping ground truth of the class
      // reaches the threshold and was not matched by a higher-scoring detection already.
      const t = truths[d.image]!;
      let best = -1;
      let bestIou = -1;
      t.boxes.forEach((g, k) => {
        if (t.labels[k] !== c) return;
        const o = iou(d.box, g);
        if (o > bestIou) {
          bestIou = o;
          best = k;
        }
      });
      const hit = best >= 0 && bestIou >= iouThreshold && !used[d.image]![best];
      if (hit) used[d.image]![best] = true;
      tp.push(hit ? 1 : 0);
    }
    const precision: number[] = [];
    const recall: number[] = [];
    let cum = 0;
    tp.forEach((v, i) => {
      cum += v;
      precision.push(cum / (i + 1));
      recall.push(cum / gtCount);
    });
    for (let i = precision.length - 2; i >= 0; i--) precision[i] = Math.max(precision[i]!, precision[i + 1]!);
    let ap = 0;
    let prev = 0;
    recall.forEach((r, i) => {
      ap += (r - prev) * precision[i]!;
      prev = r;
    });
    perClass.set(c, ap);
  }
  const values = [...perClass.values()];
  return { map: values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0, perClass };
}
