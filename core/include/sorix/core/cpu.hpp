#pragma once
// sorix/core/cpu.hpp — which CPU capability's kernels run.
//
// One binary carries every numeric kernel compiled once per CPU capability:
//   "scalar"  baseline x86-64 (SSE2), every x86-64 CPU ("neon" on arm64, the only one there;
//             its kernel units compile with g++'s aarch64 cross compiler, untested on hardware)
//   "avx2"    AVX2 + FMA (Haswell, Zen and later)
//   "avx512"  AVX-512 F/CD/BW/DQ/VL (Skylake-X, Ice Lake, Zen 4 and later)
// The highest one the CPU runs is chosen on first use. The environment variable
// SORIX_CPU_CAPABILITY=scalar|avx2|avx512 forces a lower one; an unknown value, or one the CPU
// cannot run, makes the first kernel call throw std::invalid_argument naming it (never a crash).
//
// Determinism: every capability gives the same bits (docs/determinism.md), so the choice changes
// only the speed.
#include <string>
#include <vector>

namespace sorix {

/// The capability whose kernels run now: "scalar", "avx2" or "avx512".
std::string cpu_capability();

/// The capabilities this CPU and this build can run, lowest first ("scalar" is always there).
std::vector<std::string> available_cpu_capabilities();

/// Runs the kernels of `name` from now on (for tests and benchmarks that compare the paths).
/// Throws std::invalid_argument for an unknown name or one this CPU cannot run. Call it between
/// ops, not while another thread is inside one.
void set_cpu_capability(const std::string& name);

}  // namespace sorix
