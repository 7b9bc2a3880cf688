#!/usr/bin/env bash
# Installs the system packages webgpu-saliency needs on a Debian 12 (bookworm) machine:
#   - Mesa lavapipe (software Vulkan) from bookworm-backports: Dawn rejects bookworm's own Mesa 22.3.
#   - dataset-fashion-mnist: the training and test images of the bundled models.
#   - chromium: the browser tests (test/web.test.ts) drive it headless through puppeteer-core.
#   - libonnx-testdata: ONNX's conformance models, run against ONNX Runtime (test/onnx-conformance.test.ts).
# Safe to run twice. Needs root (or sudo). Skips what is already installed.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

have_backports_lavapipe() {
  [ -f /usr/share/vulkan/icd.d/lvp_icd.json ] || [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
  dpkg --compare-versions "$v" ge 25 
}

export DEBIAN_FRONTEND=noninteractive
updated=no
apt_update() { [ "$updated" = yes ] || { $SUDO apt-get update -q; updated=yes; }; }

if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  apt_update
  $SUDO apt-get install -y -q dataset-fashion-mnist
fi

if [ ! -x /usr/bin/chromium ]; then
  apt_update
  $SUDO apt-get install -y -q chromium
fi

if [ ! -d /usr/share/libonnx-testdata/data/node ]; then
  apt_update
  $SUDO apt-get install -y -q libonnx-testdata
fi

if have_backports_lavapipe; then
  echo "setup-system: Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Reuse the URI and keyring of the existing Debian source.
  src=/etc/apt/sources.list.d/debian.sources
  uri=http://deb.debian.org/debian
  key=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ -f "$src" ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' "$src")
    k=$(awk '/^Signed-By:/{print $2; exit}' "$src"); [ -n "$k" ] && key=$k
  fi
  echo "setup-system: adding bookworm-backports ($uri)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key" \
    | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
fi

updated=no
apt_update
$SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
$SUDO apt-get install -y -q libvulkan1
echo "setup-system: installed Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
