#pragma once
// Binary checkpoint files: a StateDict (ordered, named tensors) to and from disk.
//
// Format (docs/checkpoint-format.md; every integer little-endian):
//   "SORIXCKP" (8 bytes) | version u32 (= kCheckpointFormatVersion) | entry count u64 |
//   per entry: name length u32, name bytes (UTF-8, no terminator), dtype u8 (0 float32,
//              1 float64, 2 int64), ndim u32 (<= 64), dims i64 x ndim, data (numel x element
//              size bytes, raw little-endian, row-major) |
//   CRC-32 u32 (zlib's crc32) over every byte before it.
//
// Writes are atomic: the file is written to a temporary unique to that write,
// "<path>.tmp.<pid>.<n>", flushed and fsync'ed, renamed over `path`, and the directory is
// fsync'ed. A failed save leaves any old file at `path` untouched and no temp file behind; the
// temporaries of writers that were killed are removed by the next save to that path. Threads and
// processes may save to one path at once: a load always sees one complete checkpoint.
//
// Loads validate everything (magic, version, every length against the bytes left in the file,
// ndim, dtype codes, duplicate names, the CRC) before returning, and allocate no more than the
// file's own size: a truncated or corrupt file is an error, never a crash.
//
// Errors: std::runtime_error whose message names the function, the path and what is wrong
// (including the errno text for I/O failures). save_state also throws std::invalid_argument for an
// undefined tensor in the StateDict (before any file is created).
//
// Tensors are saved by value (their data; requires_grad and autograd history are not saved);
// loaded tensors are fresh, contiguous and do not require grad.
#include <cstdint>
#include <string>

#include "sorix/core/state_dict.hpp"

namespace sorix {

/// The format version this build writes; load_state accepts exactly this version.
inline constexpr std::uint32_t kCheckpointFormatVersion = 1;

/// Writes `state` to `path` atomically (see above).
void save_state(const StateDict& state, const std::string& path);

/// Reads and fully validates a file written by save_state.
StateDict load_state(const std::string& path);

}  // namespace sorix
