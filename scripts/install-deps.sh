#!/usr/bin/env bash
# Installs the Debian packages sorix needs, and only those that are missing.
# Usage: scripts/install-deps.sh [core|run|bench|fuzz]
#   core  - build + test dependencies (default; what `make test` needs)
#   run   - core + the Fashion-MNIST data (what `make run` needs)
#   bench - run + PyTorch and NumPy for the side-by-side benchmarks
#   fuzz  - core + clang and its libFuzzer / sanitizer runtimes (what `make fuzz` needs)
set -euo pipefail
level="${1:-core}"
pkgs=(libtbb-dev libxtensor-dev libxsimd-dev xtl-dev librandom123-dev catch2 libopenblas-dev zlib1g-dev cmake g++ make
      binutils python3)
# Gloo: the engine of sorix::distributed (its tests are part of make test).
pkgs+=(libgloo-dev)
# qemu-user runs the test suite's emulated-CPU check (scripts/check-emulated-cpus.sh), x86-64 only.
if [ "$(uname -m)" = "x86_64" ]; then pkgs+=(qemu-user); fi
case "$level" in
  core) ;;
  run) pkgs+=(dataset-fashion-mnist) ;;
  bench) pkgs+=(dataset-fashion-mnist python3-torch python3-numpy) ;;
  fuzz) pkgs+=(clang libclang-rt-dev) ;;
  *) echo "install-deps.sh: unknown level '$level' (expected core, run, bench or fuzz)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
