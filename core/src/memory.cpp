// Allocation policy for tensor storage.
//
// Every op returns a fresh tensor, so a training step allocates and frees the same few buffer
// sizes thousands of times. glibc serves blocks above its (dynamic) mmap threshold with fresh
// mmap()ed pages and returns trimmed heap memory to the kernel, so each step paid page faults
// and zeroing for memory it had just freed (measured: ~10% of a Fashion-MNIST epoch in the
// kernel's fault path; a 10^7-element Dropout output ran at the page-fault rate, 5x slower than
// a copy). At load time the library therefore asks glibc to serve every block from its heaps
// instead of per-block mmap (M_MMAP_MAX = 0) and to keep up to 1 GiB of freed memory for reuse,
// as a caching allocator would. Set SORIX_MALLOC_TUNING=0 to leave the process's malloc
// settings alone.
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <cstdint>

#include "sorix_core/internal.hpp"

namespace sorix::detail {
namespace {

struct MallocTuning {
  MallocTuning() {
#if defined(__GLIBC__)
    const char* env = std::getenv("SORIX_MALLOC_TUNING");
    if (env != nullptr && std::strcmp(env, "0") == 0) return;
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    mallopt(M_TOP_PAD, 16 * 1024 * 1024);
#endif
  }
};

const MallocTuning tuning;

}  // namespace

std::shared_ptr<std::uint8_t[]> allocate_huge_page_buffer(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t length = (bytes + kHuge - 1) / kHuge * kHuge;
  // Map one huge page more than needed and unmap the slack on both sides: the start is aligned.
  void* raw = mmap(nullptr, length + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw != MAP_FAILED) {
    const auto base = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (base + kHuge - 1) & ~(std::uintptr_t{kHuge} - 1);
    if (aligned > base) munmap(raw, aligned - base);
    const std::uintptr_t tail = base + length + kHuge - (aligned + length);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + length), tail);
    auto* p = reinterpret_cast<std::uint8_t*>(aligned);
    (void)madvise(p, length, MADV_HUGEPAGE);  // a hint: without THP the pages are simply small
    return std::shared_ptr<std::uint8_t[]>(p, [length](std::uint8_t* q) { munmap(q, length); });
  }
#endif
  return std::shared_ptr<std::uint8_t[]>(new std::uint8_t[bytes]);
}

}  // namespace sorix::detail
