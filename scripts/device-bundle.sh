#!/usr/bin/env bash
# Packs the scaling and comparison programs for the 16-core device machine that some sessions are
# lent (it has no package registry and nothing of ours installed): builds them (the default,
# portable build: each picks the device CPU's best capability at run time), then tars them with the
# shared libraries they load
# (all but glibc's own: the device's is newer), the Fashion-MNIST files and scripts/device-run.sh
# into build-device/bundle.tar.xz (about 45 MB; the device tool carries at most 64 MiB).
#
#   scripts/device-bundle.sh
#   device run: carry ["build-device/bundle.tar.xz"],
#     command "tar -xJf build-device/bundle.tar.xz -C /tmp && bash /tmp/bundle/run.sh", timeout 540 s
#
# run.sh writes its tables to $OUT (machine.txt, determinism.txt, dropout.txt, training.txt,
# determinism_cost.txt, products.txt, scaling.txt/.csv/.svg); docs/benchmarks.md says what to
# compare.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-device
bundle=$build/bundle
programs=(bench_dropout bench_training bench_determinism determinism_check bench_products parallel_scaling)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" -j2 --target "${programs[@]}"

rm -rf "$bundle" "$build/bundle.tar.xz"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data"
for p in "${programs[@]}"; do cp "$build/examples/$p" "$bundle/bin/"; done
ldd "$bundle"/bin/* | awk '/=> \//{print $3}' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt)\.so|/ld-linux' |
  while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
data=/usr/share/datasets/fashion-mnist
if ! ls "$data"/*-ubyte.gz > /dev/null 2>&1; then
  echo "device-bundle: no Fashion-MNIST in $data (scripts/install-deps.sh run installs it)" >&2
  exit 1
fi
cp "$data"/*-ubyte.gz "$bundle/data/"
cp "$root/scripts/device-run.sh" "$bundle/run.sh"
tar -C "$build" -cJf "$build/bundle.tar.xz" bundle
ls -la "$build/bundle.tar.xz"
