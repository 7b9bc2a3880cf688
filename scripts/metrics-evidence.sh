#!/usr/bin/env bash
# The evidence in docs/metrics.md: every method × every metric on the bundled fashion-vgg and
# fashion-gap (the first 100 Fashion-MNIST test images, each explained for its predicted class,
# SmoothGrad with 10 samples, the pointing game on each item's bounding box) and on human's emotion
# model (the astronaut's face). About two hours on lavapipe (2 shared cores); run once:
#
#   npm run metrics-evidence
#
# A model whose out/metrics-evidence/<model>/metrics.json exists is not measured again (delete the
# folder to redo it), so an interrupted run continues where it stopped.
# Writes out/metrics-evidence/<model>/ (metrics.json, curves.png, randomisation.png, table.txt),
# copies the JSON to docs/metrics/<model>.json and fashion-vgg's pictures to docs/images/, and
# prints the Markdown tables (scripts/metrics-table.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
CLI="node dist/cli/main.js"
IMAGES=out/fashion-test-100
OUT=out/metrics-evidence
mkdir -p "$IMAGES" "$OUT" docs/metrics docs/images
for i in $(seq 0 99); do
  [ -f "$IMAGES/fashion-$i.png" ] || $CLI sample --index "$i" --out "$IMAGES" > /dev/null
done
for m in fashion-vgg fashion-gap emotion; do
  mkdir -p "$OUT/$m"
  [ -f "$OUT/$m/metrics.json" ] && continue
  if [ "$m" = emotion ]; then
    $CLI metrics --model node_modules/@vladmandic/human/models/emotion.json --image assets/astronaut.png \
      --crop 170,40,120,120 --samples 10 --out "$OUT/$m" | tee "$OUT/$m/table.txt"
  else
    $CLI metrics --model "$m" --image "$IMAGES" --samples 10 --box auto --out "$OUT/$m" | tee "$OUT/$m/table.txt"
  fi
done
for m in fashion-vgg fashion-gap emotion; do cp "$OUT/$m/metrics.json" "docs/metrics/$m.json"; done
cp "$OUT/fashion-vgg/randomisation.png" docs/images/metrics-randomisation-fashion-vgg.png
cp "$OUT/fashion-vgg/curves.png" docs/images/metrics-curves-fashion-vgg.png
node scripts/metrics-table.mjs docs/metrics/fashion-vgg.json docs/metrics/fashion-gap.json docs/metrics/emotion.json
