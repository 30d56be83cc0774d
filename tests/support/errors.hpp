#pragma once
// Capturing an expected exception's message, for tests that check what an error says.
#include <catch2/catch.hpp>

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

namespace sorix::testing {

/// True when `part` occurs in `s`.
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// The what() of the E that f() throws. Fails the test case if f() throws nothing; an exception
/// of another type propagates (Catch reports it). Use E = std::exception to accept any type.
template <class E = std::invalid_argument, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

/// The contract of every input check: f() throws an E whose message contains each of `parts`
/// (the function's name, the offending value or shape). Another exception type fails the test.
template <class E, class F>
void check_error(F&& f, std::initializer_list<std::string> parts) {
  const std::string m = message_of<E>(std::forward<F>(f));
  INFO("message: " << m);
  for (const std::string& p : parts) CHECK(contains(m, p));
}

}  // namespace sorix::testing
