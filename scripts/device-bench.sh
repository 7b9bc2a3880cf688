#!/usr/bin/env bash
# Everything issue 21 leaves to a lent NVIDIA GPU (an H200), in one run of under 10 minutes.
#
# Here, first (a few minutes; needs lavapipe):   bash scripts/device-pack.sh
# Then with the device tool, from the repository root:
#   run({ command: 'bash scripts/device-bench.sh', carry: ['.device'], timeout_s: 600 })
# What comes back, in $OUT (each step has its own timeout, so a slow one cannot take the others):
#   bench-224.json                    `npm run bench -- --json` at 224×224 (every work ours and
#                                     TF.js's, peak memory, profiles, kernel table, D-RISE and
#                                     'saliency batch' speed)
#                                     with the default budget (2 GiB in Node): keep it as
#                                     docs/bench/h200-<date>.json
#   bench-224-1gib.json               our SmoothGrad alone (50 samples), within a 1 GiB budget
#                                     (a browser tab's default)
#   centernet-drise-{chelsea,coffee,astronaut}.png
#                                     D-RISE of CenterNet's detection 0 with the defaults (5000
#                                     masks, 16×16 grid): the README's three pictures
#   device.log                        everything printed, with each step's time, CenterNet's masks
#                                     per second, and nvidia-smi's memory during the 1 GiB run
# docs/benchmarks.md lists the figures to take from these.
set -uo pipefail
OUT=${OUT:-out/device}
mkdir -p "$OUT"
t0=$(date +%s)
elapsed() { echo "[$(($(date +%s) - t0)) s]"; }

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, says how it ended and how long it took.
step() {
  local name=$1 limit=$2
  shift 2
  echo "$(elapsed) $name: $*" >&2 # stdout may be the step's output file
  local s=$(date +%s)
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "$(elapsed) $name: exit $rc after $(($(date +%s) - s)) s$([ $rc = 124 ] && echo " (stopped at its ${limit} s limit)")" >&2
  return 0
}

main() {
  source .device/activate || exit 1
  export PATH=$PATH:/usr/local/nvidia/bin # nvidia-smi, where the driver is mounted
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv

  # 1. The whole bench at 224×224 (the default size on a GPU), TF.js included.
  step bench-224 200 node dist/bench/main.js --json >"$OUT/bench-224.json"

  # 2. Our SmoothGrad alone within the 1 GiB a browser tab gets, while nvidia-smi samples the GPU's
  #    memory: its maximum minus the figure before the run is what the process really took (the
  #    weights, Dawn's own allocations included), to set beside the bench's buffer-pool peak.
  smi=/tmp/smi-1gib.csv
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$smi" &
    smi_pid=$!
    sleep 1
  fi
  step bench-224-1gib 75 node dist/bench/main.js --budget 1024 --works smoothgrad --no-tfjs --no-kernels --no-profile --drise 0 --batch 0 --json >"$OUT/bench-224-1gib.json"
  if [ -n "${smi_pid:-}" ]; then
    kill "$smi_pid" 2>/dev/null
    wait "$smi_pid" 2>/dev/null
    awk 'NR == 1 { base = $1 } { if ($1 > max) max = $1 } END { printf "nvidia-smi during bench-224-1gib: %d MiB before, %d MiB at most: the process took at most %d MiB\n", base, max, max - base }' "$smi"
  fi

  # 3. CenterNet D-RISE with the defaults (5000 masks, 16×16, batch size from the budget) on the
  #    README's three photographs; the CLI prints the masks per second.
  M=node_modules/@vladmandic/human/models/centernet.json
  for img in chelsea coffee astronaut; do
    rm -rf "/tmp/drise-$img"
    step "centernet-$img" 75 node dist/cli/main.js drise --detector "$M" --image "assets/$img.png" --target 0 --seed 1 --out "/tmp/drise-$img"
    [ -f "/tmp/drise-$img/drise-0.png" ] && cp "/tmp/drise-$img/drise-0.png" "$OUT/centernet-drise-$img.png"
  done

  echo "$(elapsed) done"
  ls -l "$OUT"
}

main 2>&1 | tee -a "$OUT/device.log"
