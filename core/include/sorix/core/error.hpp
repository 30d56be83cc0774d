#pragma once
// One helper for input checks: the message names the op, what was given and what was expected.
//   sorix::check(cond, "add", "shapes ", a, " and ", b, " ...") throws when cond is false.
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sorix {

namespace detail {
template <class T>
void append(std::ostringstream& os, const T& v) {
  os << v;
}
template <class T>
void append(std::ostringstream& os, const std::vector<T>& v) {
  os << '[';
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << ']';
}
}  // namespace detail

/// Builds "op: part1part2..." (vectors print as [a, b, c]).
template <class... Parts>
std::string error_message(const char* op, const Parts&... parts) {
  std::ostringstream os;
  os << op << ": ";
  (detail::append(os, parts), ...);
  return os.str();
}

/// Throws Error (std::invalid_argument by default) with error_message(op, parts...) unless cond.
template <class Error = std::invalid_argument, class... Parts>
void check(bool cond, const char* op, const Parts&... parts) {
  if (!cond) throw Error(error_message(op, parts...));
}

}  // namespace sorix
