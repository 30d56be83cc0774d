#pragma once
// SHA-256 digests of tensors and state dicts, for comparing runs bit for bit
// (examples/determinism_check, tests/determinism). A digest covers names, dtypes, shapes and the
// raw element bytes, so two digests are equal only when everything is bit-identical.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix {

/// Incremental SHA-256 (FIPS 180-4).
class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  /// Adds a tensor's dtype, shape and element bytes.
  void update(const Tensor& t);
  /// Finishes and returns the digest as 64 lowercase hex characters.
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;
};

std::string sha256_hex(const void* data, std::size_t n);
std::string sha256_hex(const Tensor& t);
/// Over every entry in order: name, dtype, shape, bytes.
std::string sha256_hex(const StateDict& state);

}  // namespace sorix
