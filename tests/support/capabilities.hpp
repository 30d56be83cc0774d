#pragma once
// Running the same computation on every CPU capability this machine has (sorix/core/cpu.hpp),
// for tests that compare the kernel paths bit for bit.
#include <string>
#include <utility>
#include <vector>

#include "sorix/core/cpu.hpp"

namespace sorix::testing {

/// Runs fn once per capability this CPU runs ("scalar" first) and returns (name, result) pairs;
/// the capability that was active before is restored, also when fn throws.
template <class Fn>
auto at_capabilities(Fn&& fn) {
  struct Restore {
    std::string name = cpu_capability();
    ~Restore() { set_cpu_capability(name); }
  } restore;
  std::vector<std::pair<std::string, decltype(fn())>> out;
  for (const std::string& cap : available_cpu_capabilities()) {
    set_cpu_capability(cap);
    out.emplace_back(cap, fn());
  }
  return out;
}

}  // namespace sorix::testing
