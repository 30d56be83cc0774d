#!/usr/bin/env bash
# Runs on the device machine from the bundle made by scripts/device-bundle.sh (extracted to
# /tmp/bundle): the machine, the determinism check up to 64 threads, then Dropout, training and
# the cost of determinism at 1..16 threads beside that machine's PyTorch (the first
# python3 that imports torch).
# Each table goes to $OUT (or ./out); one failing program does not stop the others.
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$here/lib
# The first interpreter that can import torch: python3 on the PATH, then the system's.
if [ -z "${SORIX_BENCH_PYTHON:-}" ]; then
  for py in "$(command -v python3)" /usr/bin/python3 /usr/local/bin/python3; do
    if [ -x "$py" ] && "$py" -c 'import torch' > /dev/null 2>&1; then
      SORIX_BENCH_PYTHON=$py
      break
    fi
  done
fi
export SORIX_BENCH_PYTHON=${SORIX_BENCH_PYTHON:-python3}
{
  lscpu
  nproc
  free -g
  "$SORIX_BENCH_PYTHON" -c 'import torch; print("torch", torch.__version__); print(torch.__config__.parallel_info())'
} > "$out/machine.txt" 2>&1
run() {  # run NAME program args...: output to $OUT/NAME.txt, with its time and exit status
  local name=$1
  shift
  local t0=$SECONDS
  "$@" > "$out/$name.txt" 2>&1
  echo "exit $? after $((SECONDS - t0)) s: $*" >> "$out/$name.txt"
  tail -n 3 "$out/$name.txt"
}
run determinism "$here/bin/determinism_check" --threads 1,2,3,4,8,16,64 --steps 20 --data "$here/data"
run dropout "$here/bin/bench_dropout" --threads 1,2,4,8,16 --sizes 1e6,1e7,6.4e7
run training "$here/bin/bench_training" --threads 1,4,16 --data "$here/data"
run determinism_cost "$here/bin/bench_determinism" --threads 1,4,16 --reps 25
run products "$here/bin/bench_products" --reps 11
run scaling "$here/bin/parallel_scaling" --threads 1,2,4,8,16 --reps 5 --csv "$out/scaling.csv" --svg "$out/scaling.svg"
