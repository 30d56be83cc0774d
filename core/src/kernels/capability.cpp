// Choosing the dispatch table: the CPU's features, SORIX_CPU_CAPABILITY, set_cpu_capability.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "sorix_core/kernels/table.hpp"
#include "sorix/core/cpu.hpp"

namespace sorix::kernels {
namespace {

struct Capability {
  const char* name;
  const KernelTable& (*table)();
  bool (*cpu_runs)();
};

#if defined(__x86_64__)
// __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0), so a feature
// that the CPU has but the kernel does not enable counts as missing.
bool runs_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool runs_avx512() {
  __builtin_cpu_init();
  return runs_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}
#endif
bool runs_always() { return true; }

// Lowest first.
const Capability kCapabilities[] = {
    {kBaselineCapability, &scalar_table, &runs_always},
#if defined(__x86_64__)
    {"avx2", &avx2_table, &runs_avx2},
    {"avx512", &avx512_table, &runs_avx512},
#endif
};

std::string known_names() {
  std::string s;
  for (const auto& c : kCapabilities) s += (s.empty() ? "" : ", ") + std::string(c.name);
  return s;
}

std::string runnable_names() {
  std::string s;
  for (const auto& c : kCapabilities)
    if (c.cpu_runs()) s += (s.empty() ? "" : ", ") + std::string(c.name);
  return s;
}

const KernelTable& checked_table(const std::string& name, const char* where) {
  for (const auto& c : kCapabilities) {
    if (name != c.name) continue;
    if (!c.cpu_runs())
      throw std::invalid_argument(std::string(where) + ": this CPU cannot run capability '" + name +
                                  "' (it runs " + runnable_names() + ")");
    return c.table();
  }
  throw std::invalid_argument(std::string(where) + ": unknown CPU capability '" + name + "' (expected one of " +
                              known_names() + ")");
}

const KernelTable& initial_table() {
  const char* forced = std::getenv("SORIX_CPU_CAPABILITY");
  if (forced != nullptr && *forced != '\0') return checked_table(forced, "SORIX_CPU_CAPABILITY");
  const KernelTable* best = nullptr;
  for (const auto& c : kCapabilities)
    if (c.cpu_runs()) best = &c.table();
  return *best;
}

std::atomic<const KernelTable*> g_active{nullptr};

}  // namespace

const KernelTable& active() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t == nullptr) {
    t = &initial_table();  // throws for a bad SORIX_CPU_CAPABILITY, every time until it is fixed
    g_active.store(t, std::memory_order_release);
  }
  return *t;
}

const KernelTable* table_for(const char* name) {
  for (const auto& c : kCapabilities)
    if (std::strcmp(name, c.name) == 0 && c.cpu_runs()) return &c.table();
  return nullptr;
}

}  // namespace sorix::kernels

namespace sorix {

std::string cpu_capability() { return kernels::active().name; }

std::vector<std::string> available_cpu_capabilities() {
  std::vector<std::string> names;
  for (const auto& c : kernels::kCapabilities)
    if (c.cpu_runs()) names.emplace_back(c.name);
  return names;
}

void set_cpu_capability(const std::string& name) {
  kernels::g_active.store(&kernels::checked_table(name, "sorix::set_cpu_capability"), std::memory_order_release);
}

}  // namespace sorix
