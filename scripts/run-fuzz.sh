#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz for a bounded time (make fuzz).
# Usage: scripts/run-fuzz.sh <build dir> [seconds per target, default 60]
# The seed corpus is written afresh by fuzz_seeds (the library's own files); what the fuzzer finds
# accumulates in <build dir>/fuzz-corpus/<target>, so later runs start from there. A crash, leak,
# timeout or out-of-memory stops that target, leaves the input in <build dir>/fuzz-artifacts/ and
# makes this script fail; reproduce with  <build dir>/tests/fuzz/<target> <artifact>.
set -euo pipefail
build="${1:?usage: run-fuzz.sh <build dir> [seconds]}"
seconds="${2:-60}"
bin="$build/tests/fuzz"
seeds="$build/fuzz-seeds"
rm -rf "$seeds"
# The targets write each input to a scratch file (the readers take paths): keep those in here.
export TMPDIR="$build/fuzz-tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
"$bin/fuzz_seeds" "$seeds"
mkdir -p "$build/fuzz-artifacts"
status=0
for target in checkpoint idx; do
  corpus="$build/fuzz-corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz: fuzz_$target for ${seconds}s"
  # -timeout: one input may take at most 10 s (a hang); -rss_limit_mb: the whole process stays
  # under 2 GiB, and with -malloc_limit_mb no single allocation may pass 1 GiB (an input of a few
  # KiB never needs that: a reader that allocates what a header claims is caught here).
  if ! ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      "$bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len=4096 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-" \
      "$corpus" "$seeds/$target" > "$build/fuzz-$target.log" 2>&1; then
    status=1
    echo "fuzz: fuzz_$target FAILED (log: $build/fuzz-$target.log):" >&2
    grep -E "ERROR|SUMMARY|==[0-9]+==|Test unit written" "$build/fuzz-$target.log" | head -20 >&2 || true
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz-$target.log" | sed "s/^/fuzz: $target /" || true
  fi
done
rm -rf "$TMPDIR"
exit $status
