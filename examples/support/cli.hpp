#pragma once
// Comma-separated command-line lists of the example programs ("1,2,4", "scalar,avx2").
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sorix::examples {

/// "a,b,c" -> {"a", "b", "c"}; throws std::invalid_argument for an empty list.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  if (out.empty()) throw std::invalid_argument("empty list '" + s + "'");
  return out;
}

/// "1,2,4" -> {1, 2, 4}; every count >= 1 (throws std::invalid_argument otherwise).
inline std::vector<int> parse_thread_list(const std::string& s) {
  std::vector<int> out;
  for (const std::string& item : split_list(s)) {
    const int n = std::stoi(item);
    if (n < 1) throw std::invalid_argument("thread counts must be >= 1, got " + item);
    out.push_back(n);
  }
  return out;
}

/// A count >= 1 given for `option` ("--reps 7"): throws std::invalid_argument for anything else
/// ("x", "0", "-2", "3x").
inline int parse_count(const std::string& option, const std::string& s) {
  std::size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || n < 1)
    throw std::invalid_argument(option + " takes a whole number >= 1, got '" + s + "'");
  return n;
}

}  // namespace sorix::examples
