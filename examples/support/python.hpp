#pragma once
// The Python interpreter the benchmarks run PyTorch with: $SORIX_BENCH_PYTHON if set (a machine
// whose PyTorch lives elsewhere, e.g. a virtual environment), else Debian's /usr/bin/python3 with
// python3-torch, as the benchmark protocol (docs/benchmarks.md) says.
#include <cstdlib>
#include <string>

namespace sorix::examples {

inline std::string bench_python() {
  const char* env = std::getenv("SORIX_BENCH_PYTHON");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("/usr/bin/python3");
}

}  // namespace sorix::examples
