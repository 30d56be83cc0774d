#!/usr/bin/env bash
# The portable build on emulated CPUs: runs the training digest program (examples/determinism_check)
# under qemu-user as a CPU without AVX (Nehalem) and one with AVX2 (Haswell), and checks that
#  - neither run executes an instruction its CPU lacks (qemu stops with SIGILL if one does),
#  - each picks the capabilities its CPU has (Nehalem: scalar only; Haswell: scalar and avx2),
#  - every capability and thread count gives the weights digest of the native run.
# AVX-512 cannot be emulated by qemu-user; an AVX-512 machine checks it natively (ctest's
# example_determinism_check runs every capability the CPU has).
# Usage: scripts/check-emulated-cpus.sh BUILD_DIR. Exits 77 (ctest: skipped) without qemu-x86_64.
set -euo pipefail
build="${1:-build}"
# Each emulated CPU must pick its own capabilities: a forced one from the caller's environment
# would hide that.
unset SORIX_CPU_CAPABILITY
prog="$build/examples/determinism_check"
if [ "$(uname -m)" != "x86_64" ] || ! command -v qemu-x86_64 > /dev/null; then
  echo "check-emulated-cpus: needs an x86-64 host with qemu-x86_64 (Debian's qemu-user); skipped"
  exit 77
fi
# Synthetic data (the real set takes minutes to decompress under emulation), two steps.
args=(--steps 2 --threads 1,2 --no-processes --data /nonexistent-use-synthetic --batch-size 128)
native=$("$prog" "${args[@]}" --capabilities scalar | awk '/^  weights/ {print $2}')
echo "native weights digest: $native"
status=0
for cpu in Nehalem Haswell; do
  case $cpu in Nehalem) want="scalar" ;; Haswell) want="scalar avx2" ;; esac
  echo "== qemu-x86_64 -cpu $cpu"
  if ! out=$(qemu-x86_64 -cpu "$cpu" "$prog" "${args[@]}" --expect "$native" 2>&1); then
    echo "$out"
    echo "check-emulated-cpus: FAILED on $cpu"
    status=1
    continue
  fi
  echo "$out" | grep -E "^arena|IDENTICAL"
  got=$(echo "$out" | awk '/^arena/ {print $2}' | uniq | tr '\n' ' ' | sed 's/ $//')
  if [ "$got" != "$want" ]; then
    echo "check-emulated-cpus: $cpu ran capabilities '$got', expected '$want'"
    status=1
  fi
done
exit $status
