#!/usr/bin/env bash
# The capability translation units (core/src/kernels/cap_*.cpp) are compiled with wider
# instruction sets than the rest of the library. A shared inline function (a weak symbol: say a
# standard-library template) instantiated in one of them could be the copy the linker keeps for
# the baseline code too, which would then run AVX instructions on a CPU without them. So those
# objects may define weak symbols only for templates instantiated on an xsimd architecture (their
# names carry the architecture, so they differ per capability). Usage: scripts/check-kernel-symbols.sh BUILD_DIR
set -euo pipefail
build="${1:-build}"
status=0
shopt -s nullglob
objects=("$build"/core/CMakeFiles/sorix_core.dir/src/kernels/cap_*.cpp.o)
if [ ${#objects[@]} -eq 0 ]; then
  echo "check-kernel-symbols: no capability objects (cap_*.cpp.o) under $build/core" >&2
  exit 1
fi
for obj in "${objects[@]}"; do
  bad=$(nm -C "$obj" | awk '$2 == "W" || $2 == "V" || $2 == "u"' |
        grep -v -E 'xsimd::(sse2|avx2|fma3<|avx512|neon|generic)|DW\.ref\.__gxx_personality_v0' || true)
  if [ -n "$bad" ]; then
    echo "check-kernel-symbols: $(basename "$obj") defines shared inline code:"
    echo "$bad"
    status=1
  else
    echo "check-kernel-symbols: $(basename "$obj"): only architecture-specific kernel templates"
  fi
done
exit $status
