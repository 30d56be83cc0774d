#!/usr/bin/env bash
# ThreadSanitizer stage (make test-tsan): the parallel, RNG, determinism and data tests, built by
# the `tsan` preset. The selection keeps the stage to a few minutes on 2 cores: the whole thread
# layer (tests/parallel), the determinism suite (every op at several thread counts), the Philox /
# random-op tests of tests/core ([rng], [random]) and the DataLoader / dataset tests of tests/nn
# ([data]). Suppressions (scripts/tsan.supp) cover only oneTBB's own internals.
# Usage: scripts/run-tsan.sh <build dir>
set -euo pipefail
build="${1:?usage: run-tsan.sh <build dir>}"
here="$(cd "$(dirname "$0")" && pwd)"
export TSAN_OPTIONS="suppressions=$here/tsan.supp halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# Each binary's output goes to a log; on a failure the first report is printed last, with its long
# template frames cut, so that the end of the output (all CI shows) names both accesses.
run() {
  echo "tsan: $*"
  local log
  log="$build/tsan-$(basename "$1").log"
  if ! "$@" > "$log" 2>&1; then
    tail -n 20 "$log"
    echo "tsan: $* failed; its first report (the whole log: $log):"
    sed -n '/WARNING: ThreadSanitizer/,/^SUMMARY/p' "$log" | cut -c1-240 | head -n 100 || true
    exit 1
  fi
  tail -n 2 "$log"
}
# The uninstrumented loop file must define no standard-library code: an uninstrumented weak copy
# (a shared_ptr release, a string function) could stand in for the instrumented ones at link time.
loops="$build/parallel/CMakeFiles/sorix_parallel.dir/src/tbb_loops.cpp.o"
if nm -C --defined-only "$loops" | grep -E ' [WVwv] std::'; then
  echo "tsan: $loops defines standard-library functions (above); keep it to the TBB loops" >&2
  exit 1
fi
# The canary first: a deliberate race between chunks must be reported, or the suppressions and
# annotations hide real races and the rest of this stage proves nothing.
echo "tsan: canary (a deliberate race must be reported)"
if "$build/tests/test_parallel" "[tsan_canary]" > "$build/tsan-canary.log" 2>&1 ||
   ! grep -q "ThreadSanitizer: data race" "$build/tsan-canary.log"; then
  echo "tsan: the deliberate race in tests/parallel/test_tsan_canary.cpp was not reported" >&2
  exit 1
fi
run "$build/tests/test_parallel"
run "$build/tests/test_determinism"
run "$build/tests/test_core" "[rng],[random]"
run "$build/tests/test_nn" "[data]"
