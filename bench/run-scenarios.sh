#!/usr/bin/env bash
# Time frozen-lockfile installs of one fixture with several tools, interleaved.
#
#   REGISTRY_URL=http://127.0.0.1:PORT/ run-scenarios.sh <fixture-dir> <work-dir> TOOL...
#
# TOOL is LABEL=KIND:PATH, KIND one of pnpm | pacquet | bun | native (this repository's CLI,
# PATH = the repository root), e.g.
#   pnpm11=pnpm:/opt/t/pnpm11/node_modules/.bin/pnpm  bun=bun:/opt/t/bun/node_modules/.bin/bun
# The fixture dir holds package.json, pnpm-lock.yaml, pnpm-workspace.yaml (and bun.lock for bun).
# Env: SCENARIOS ("cold warm hot"), RUNS (5), POLICY (lean | default),
#      NODE_DIR (prepended to PATH: pnpm 11 needs Node.js >= 22.13),
#      REGISTRY_PID (optional: also record the registry server's CPU seconds per run).
# Scenarios: cold = no store, no cache, no node_modules; warm = store+cache kept,
#            node_modules removed; hot = everything kept (repeat install).
# Every run starts from a fresh copy of the fixture (hot: the previous run's project).
# Each tool gets its own HOME, XDG dirs, store and cache under <work-dir>/<label>.
# POLICY=lean adds "minimumReleaseAge: 0" (pnpm 11/12 and pacquet otherwise fetch
# every packument, plus attestations, to check release ages) and "updateNotifier: false".
# Output: <work-dir>/results.tsv (one line per run) and a summary on stdout.
set -euo pipefail
# The tools run without the caller's Node settings: NODE_EXTRA_CA_CERTS makes every Node
# process parse that bundle at start-up (30 ms per run where it names the system bundle), a
# cost only the Node-based tools would pay; NODE_OPTIONS could change any of them.
# KEEP_NODE_ENV=1 keeps both.
[[ -n ${KEEP_NODE_ENV:-} ]] || unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
fixture=$(cd "$1" && pwd); work=$(mkdir -p "$2" && cd "$2" && pwd); shift 2
: "${REGISTRY_URL:?set REGISTRY_URL to the loopback registry}"
SCENARIOS=${SCENARIOS:-cold warm hot}; RUNS=${RUNS:-5}; POLICY=${POLICY:-lean}
here=$(cd "$(dirname "$0")" && pwd)
results=$work/results.tsv
# bun does not read pnpm-workspace.yaml: its supportedArchitectures become --os/--cpu/--libc
# flags, so bun fetches the same optional platform packages as the others.
read -r -a bun_arch < <(awk '/^supportedArchitectures:/ {s = 1; next} /^[^ ]/ {s = 0}
  s && /^  (os|cpu|libc):/ {k = $1; sub(":", "", k); next} s && /^    - / {printf "--%s %s ", k, $2}' \
  "$fixture/pnpm-workspace.yaml" 2>/dev/null; echo)
[[ -f $results ]] || printf 'tool\tscenario\trun\trc\twall_s\tuser_s\tsys_s\tmaxrss_kb\tregistry_cpu_s\n' >"$results"

fresh_project() { # dir
  rm -rf "$1"; mkdir -p "$1"
  cp "$fixture"/package.json "$1"/
  for f in pnpm-lock.yaml bun.lock; do [[ -f $fixture/$f ]] && cp "$fixture/$f" "$1"/; done
  { grep -v '^storeDir:' "$fixture/pnpm-workspace.yaml" 2>/dev/null || true
    echo "storeDir: $S/store"
    [[ $POLICY == lean ]] && printf 'minimumReleaseAge: 0\nupdateNotifier: false\n'
  } >"$1/pnpm-workspace.yaml"
  printf 'registry=%s\nignore-scripts=true\n' "$REGISTRY_URL" >"$1/.npmrc"
}

prepare() { # scenario
  case $1 in
    cold) rm -rf "$S"/{store,cache,home,xdg}; fresh_project "$S/project" ;;
    warm) fresh_project "$S/project" ;;
    hot) [[ -d $S/project/node_modules ]] || { echo "hot needs a previous install" >&2; exit 1; } ;;
  esac
  mkdir -p "$S"/{home,xdg/cache,xdg/data,xdg/state,xdg/config}
  sync
}

install() { # kind path
  cd "$S/project"
  local envs=(HOME="$S/home" XDG_CACHE_HOME="$S/xdg/cache" XDG_DATA_HOME="$S/xdg/data"
    XDG_STATE_HOME="$S/xdg/state" XDG_CONFIG_HOME="$S/xdg/config" PATH="${NODE_DIR:+$NODE_DIR:}$PATH")
  local cmd
  case $1 in
    pnpm) cmd=("$2" install --frozen-lockfile --registry "$REGISTRY_URL" --store-dir "$S/store" --cache-dir "$S/cache") ;;
    pacquet) cmd=("$2" install --frozen-lockfile) ;;
    native) cmd=(node "$2/cli/pacquet-native.js" install --frozen-lockfile --reporter=silent) ;;
    bun) envs+=(BUN_INSTALL_CACHE_DIR="$S/store")
      cmd=("$2" install --frozen-lockfile --linker isolated --registry "$REGISTRY_URL" --ignore-scripts "${bun_arch[@]}") ;;
    *) echo "unknown kind $1" >&2; exit 2 ;;
  esac
  /usr/bin/time -f '%e %U %S %M' -o "$S/time.txt" env "${envs[@]}" "${cmd[@]}" >"$S/last.log" 2>&1
}

cpu_of() { [[ -n ${REGISTRY_PID:-} ]] && awk '{print ($14+$15)/100}' "/proc/$REGISTRY_PID/stat" || echo 0; }

one_run() { # label kind path scenario run
  S=$work/$1
  prepare "$4"
  local c0 rc=0; c0=$(cpu_of)
  install "$2" "$3" || rc=$?
  local c1; c1=$(cpu_of)
  read -r wall user sys rss < <(tail -n1 "$S/time.txt")
  [[ $rc == 0 ]] || { echo "$1 $4 run $5 failed (rc=$rc); see $S/last.log" >&2; tail -n5 "$S/last.log" >&2; }
  [[ $5 == warmup ]] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$4" "$5" "$rc" "$wall" "$user" "$sys" "$rss" \
    "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')" >>"$results"
}

for scenario in $SCENARIOS; do
  for tool in "$@"; do  # untimed warm-up: fills the store for warm, node_modules for hot
    label=${tool%%=*}; spec=${tool#*=}
    one_run "$label" "${spec%%:*}" "${spec#*:}" "$([[ $scenario == hot ]] && echo warm || echo "$scenario")" warmup
  done
  for run in $(seq "$RUNS"); do
    for tool in "$@"; do  # interleaved: tool A, B, C, then A, B, C again ...
      label=${tool%%=*}; spec=${tool#*=}
      one_run "$label" "${spec%%:*}" "${spec#*:}" "$scenario" "$run"
    done
  done
done
node "$here/summarize.mjs" "$results"
