#!/usr/bin/env bash
# Packs what scripts/device-bench.sh needs on a lent NVIDIA GPU machine into .device/ (git-ignored).
# That machine has no Node, no npm registry and no Vulkan loader; what travels with the working
# tree (tracked files plus the carried .device/) must stay under 64 MiB. So .device/ holds:
#   node.xz          this machine's Node binary, compressed
#   libvulkan1_*.deb Debian's Vulkan loader (Dawn's Vulkan backend needs it; the NVIDIA driver is there)
#   tree.tar.xz      dist/ and only the node_modules files that the bench and the CLI's CenterNet
#                    D-RISE load: found by running both here, on a tiny size, under a load tracer
#                    (require and import resolution), plus their package.json files and
#                    CenterNet's model files (read as data, not loaded as modules)
#   activate         `source .device/activate` there: unpacks all this and points Dawn at the driver
#
# Usage, from the repository root on this machine (needs lavapipe; takes a few minutes):
#   bash scripts/device-pack.sh
# Then run scripts/device-bench.sh there (see its header and docs/benchmarks.md).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
mkdir -p .device # .gitignore lists it

npm run build >/dev/null

if [ ! -s .device/node.xz ]; then
  echo "compressing $(command -v node) (about a minute)..."
  xz -T0 -6 -c "$(readlink -f "$(command -v node)")" >.device/node.xz
fi
if ! ls .device/libvulkan1_*.deb >/dev/null 2>&1; then
  (cd .device && apt-get download libvulkan1 >/dev/null 2>&1) || { apt-get update >/dev/null 2>&1; (cd .device && apt-get download libvulkan1); }
fi

# The tracer: every file that require() or import resolves to is appended to $TRACE_LOADS.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/hooks.mjs" <<'EOF'
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.startsWith('file:')) appendFileSync(process.env.TRACE_LOADS, new URL(r.url).pathname + '\n');
  return r;
}
EOF
cat >"$tmp/preload.cjs" <<EOF
const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const { pathToFileURL } = require('node:url');
Module.register(pathToFileURL('$tmp/hooks.mjs'));
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const file = resolveFilename.apply(this, args);
  if (file.startsWith('/')) appendFileSync(process.env.TRACE_LOADS, file + '\n');
  return file;
};
EOF
export TRACE_LOADS="$tmp/loaded"
: >"$TRACE_LOADS"
centernet=node_modules/@vladmandic/human/models/centernet
echo "tracing the bench (VGG16 at 32×32, TF.js included) and CenterNet D-RISE (one mask)..."
# Through NODE_OPTIONS, so that the processes and workers they start (the bench runs
# 'saliency batch' as a child process) are traced too.
export NODE_OPTIONS="--require $tmp/preload.cjs"
node dist/bench/main.js --size 32 --reps 1 --samples 1 --drise 2 --batch 6 --no-kernels --no-profile --json >"$tmp/bench.json"
node dist/cli/main.js drise --detector "$centernet.json" --image assets/coffee.png --target 0 --masks 1 --grid 4 --out "$tmp/out" >/dev/null

unset NODE_OPTIONS

# The files under node_modules, the package.json of every folder on their way up, CenterNet's files.
node - "$TRACE_LOADS" "$root" "$tmp/files" "$centernet" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [trace, root, out, centernet] = process.argv.slice(2);
const nm = path.join(root, 'node_modules') + path.sep;
const files = new Set([`${centernet}.json`, `${centernet}.bin`]);
for (const f of new Set(fs.readFileSync(trace, 'utf8').split('\n'))) {
  if (!f.startsWith(nm) || !fs.existsSync(f)) continue;
  files.add(path.relative(root, f));
  for (let dir = path.dirname(f); dir.length >= nm.length; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) files.add(path.relative(root, pj));
  }
}
fs.writeFileSync(out, [...files].sort().join('\n') + '\n');
EOF
echo "$(wc -l <"$tmp/files") files from node_modules"
tar cJf .device/tree.tar.xz --exclude='*.map' dist -T "$tmp/files"

cat >.device/activate <<'ACT'
# source me on the GPU machine, from the repository root
for f in .device/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_ICD_FILENAMES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export VK_DRIVER_FILES=$VK_ICD_FILENAMES
mkdir -p /tmp/nodebin && xz -dc .device/node.xz >/tmp/nodebin/node && chmod +x /tmp/nodebin/node
export PATH=/tmp/nodebin:$PATH
tar xJf .device/tree.tar.xz
echo "device ready: node $(node --version)"
ACT

du -sh .device/* | sort -h
packed=$(du -sm .device | cut -f1)
tracked=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) / 1048576 ))
echo "total: .device ${packed} MiB + tracked files ${tracked} MiB (the limit is 64 MiB together)"
if [ $((packed + tracked)) -ge 64 ]; then
  echo "device-pack: over the 64 MiB that can travel" >&2
  exit 1
fi
