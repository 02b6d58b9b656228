#!/usr/bin/env bash
# Fuzzes the lockfile parser, tarball extraction and the index.db row decoder (fuzz/), one
# target after another, each with one libFuzzer job, then prints what each run did.
# Too long for CI; CI replays the seeds and past crashes through `cargo test` instead.
#
#   scripts/fuzz.sh [seconds per target (default 300)] [target ...]
#
# New corpus entries go to fuzz/corpus/<target> (ignored by git), crashes to
# fuzz/artifacts/<target>, logs to fuzz/logs/<target>.log. A crash becomes a regression test
# by copying its input to crates/<crate>/tests/fuzz-regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-300}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(lockfile tar_extract msgpackr_row)
toolchain=${FUZZ_TOOLCHAIN:-nightly}

# cargo-fuzz drives libFuzzer and needs a nightly compiler (sanitizers, coverage passes).
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
  cargo install --locked cargo-fuzz
fi

# Release build with debug assertions and overflow checks (cargo-fuzz's default), ASan on.
cargo "+$toolchain" fuzz build --fuzz-dir "$root/fuzz"

mkdir -p fuzz/logs
# tar_extract unpacks into a fresh temporary store per input: keep that off the disk.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then
  export TMPDIR=/dev/shm
fi
declare -A max_len=([lockfile]=32768 [tar_extract]=16384 [msgpackr_row]=4096)
summary=()
status=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "== $target: ${seconds}s"
  # With -jobs, libFuzzer writes the job's output to fuzz-<n>.log in the working directory.
  work=$(mktemp -d)
  started=$SECONDS
  set +e
  (cd "$work" && cargo "+$toolchain" fuzz run --fuzz-dir "$root/fuzz" "$target" \
    "$root/fuzz/corpus/$target" "$root/fuzz/seeds/$target" -- \
    -jobs=1 -max_total_time="$seconds" -max_len="${max_len[$target]:-4096}" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  set -e
  time=$((SECONDS - started))
  cat "$work"/fuzz-*.log >"fuzz/logs/$target.log" 2>/dev/null || true
  rm -rf "$work"
  log=fuzz/logs/$target.log
  # A run cut short may lack the stats line: no match is not an error here.
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  if grep -qE '^==[0-9]+==|SUMMARY: |panicked at|Test unit written to' "$log"; then
    result="FAILED: $(grep -o 'Test unit written to .*' "$log" | tail -1)"
    status=1
  else
    result=ok
  fi
  summary+=("$(printf '%-13s %8ss %12s execs %6s corpus  %s' "$target" "${time:-?}" "${execs:-?}" "$corpus" "$result")")
done

echo
echo "target         run time        executions  corpus  result"
printf '%s\n' "${summary[@]}"
exit $status
