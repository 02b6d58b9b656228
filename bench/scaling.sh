#!/usr/bin/env bash
# Scaling run: run.sh on fixtures of growing size, then plot.mjs draws median wall time against
# packages and against tarball bytes, one series per tool and scenario, in one SVG.
#   bench/scaling.sh     (env: FIXTURES ("small alotta huge"), SCENARIOS ("cold warm"), RUNS, WORK,
#                         TOOLS as for run.sh)
# Each tool gets its own run.sh call, one after another: the huge fixture's stores (~3 GB
# each) do not fit side by side on run.sh's 10 GB RAM disk, and each call clears the last one's.
# Output in $WORK/scaling: <fixture>.tsv (every run), <fixture>.md (medians), scaling.svg.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export WORK=${WORK:-/tmp/pacquet-bench} SCENARIOS=${SCENARIOS:-cold warm}
out=$WORK/scaling; mkdir -p "$out"
if [[ -n ${TOOLS:-} ]]; then read -r -a specs <<<"$TOOLS"; labels=("${specs[@]%%=*}"); else labels=(native pnpm12 bun pnpm11); fi
pairs=()
for f in ${FIXTURES:-small alotta huge}; do
  dir=$f; [[ -d $dir ]] || dir=$here/fixtures/$f
  name=$(basename "$dir"); tsv=$out/$name.tsv; rm -f "$tsv"
  for label in "${labels[@]}"; do
    echo "== $name: $label ($SCENARIOS, RUNS=${RUNS:-5})" >&2
    ONLY=$label RESULTS=$out/.part.tsv "$here/run.sh" "$dir" >/dev/null
    if [[ -f $tsv ]]; then tail -n +2 "$out/.part.tsv" >>"$tsv"; else cp "$out/.part.tsv" "$tsv"; fi
  done
  rm -f "$out/.part.tsv"
  node "$here/summarize.mjs" "$tsv" --md | tee "$out/$name.md"
  pairs+=("$dir=$tsv")
done
node "$here/plot.mjs" "$out/scaling.svg" "$WORK/mirror" "${pairs[@]}"
