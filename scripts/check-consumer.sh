#!/usr/bin/env bash
# Uses sorix as a user's project does (ctest consumer_package):
#   1. `cmake --install` into a scratch prefix, then tests/consumer/ built with find_package(sorix)
#      and run; its compile flags carry no -march;
#   2. the same program built with `pkg-config --cflags --libs sorix` and run;
#   3. tests/consumer/ configured with add_subdirectory(<sorix source>): no Catch2, no sorix
#      tests or examples, no build type forced on the consumer.
# Usage: scripts/check-consumer.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in lib/cmake/sorix/sorixConfig.cmake lib/cmake/sorix/sorixConfigVersion.cmake lib/pkgconfig/sorix.pc \
         include/sorix/sorix.hpp; do
  [ -f "$prefix/$f" ] || { echo "check-consumer: $f was not installed" >&2; exit 1; }
done

echo "== find_package(sorix)"
cmake -S "$src/tests/consumer" -B "$work/find" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > "$work/find.log"
cmake --build "$work/find" -j 2 > "$work/find-build.log"
if grep -q -- "-march" "$work/find/compile_commands.json"; then
  echo "check-consumer: -march reached the consumer's compile flags" >&2
  exit 1
fi
"$work/find/consumer"

echo "== pkg-config sorix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
g++ -O1 "$src/tests/consumer/main.cpp" -o "$work/consumer-pc" $(pkg-config --cflags --libs sorix) \
  -Wl,-rpath,"$prefix/lib"
"$work/consumer-pc"

echo "== add_subdirectory(sorix)"
cmake -S "$src/tests/consumer" -B "$work/sub" -DSORIX_SOURCE_DIR="$src" > "$work/sub.log"
if grep -q "^Catch2_DIR:" "$work/sub/CMakeCache.txt"; then
  echo "check-consumer: add_subdirectory(sorix) looked for Catch2" >&2
  exit 1
fi
if grep -q "^CMAKE_BUILD_TYPE:STRING=." "$work/sub/CMakeCache.txt"; then
  echo "check-consumer: add_subdirectory(sorix) forced a build type on the consumer" >&2
  exit 1
fi
targets="$(cmake --build "$work/sub" --target help)"
for t in test_core train_fashion_mnist bench_training; do
  if grep -qw "$t" <<< "$targets"; then
    echo "check-consumer: add_subdirectory(sorix) builds $t" >&2
    exit 1
  fi
done
grep -qw consumer <<< "$targets" || { echo "check-consumer: no consumer target" >&2; exit 1; }
echo "check-consumer: OK"
