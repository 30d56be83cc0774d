#pragma once
// Internal (not installed): a thread's reusable scratch buffer for the convolutions' per-image
// tasks (conv.cpp's columns, conv_winograd.cpp's transformed tiles).
#include <cstddef>
#include <memory>

namespace sorix::nn::detail {

/// This thread's scratch of at least n values of T: kept from task to task and never zeroed
/// (every use writes what it reads first). A task that holds it runs no nested parallel loop, so
/// no other task can take the thread and the buffer while it is in use; one task never uses it for
/// two things at once.
template <class T>
T* thread_scratch(std::size_t n) {
  thread_local std::unique_ptr<T[]> buffer;
  thread_local std::size_t size = 0;
  if (size < n) {
    buffer.reset(new T[n]);
    size = n;
  }
  return buffer.get();
}

}  // namespace sorix::nn::detail
