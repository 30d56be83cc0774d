// Regression tests for what fuzzing the IDX / Fashion-MNIST reader found (tests/fuzz/fuzz_idx.cpp):
// each input is built here, byte by byte, and must end in a clear exception naming the file.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/temp_files.hpp"

using sorix::testing::check_error;
using sorix::testing::TempDir;
using sorix::testing::write_bytes;

namespace {

std::vector<unsigned char> idx(const std::vector<std::uint32_t>& dims, std::size_t data_bytes = 0) {
  std::vector<unsigned char> b{0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  for (auto d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((d >> s) & 0xFF));
  }
  b.insert(b.end(), data_bytes, 1);
  return b;
}

}  // namespace

TEST_CASE("IDX: a zero dim beside dims whose product overflows is refused, naming the file", "[data][fuzz]") {
  // Found by fuzz_idx: with a zero dim the byte count is 0, so no data bounds the other dims, and
  // the tensor's strides (products of the other dims) overflowed in signed arithmetic inside
  // xtensor; load_fashion_mnist also multiplied rows * cols unchecked.
  TempDir dir("sorix_reader_");
  const std::string f = dir.file("f.idx");
  write_bytes(f, idx({0, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  check_error<std::runtime_error>([&] { sorix::data::read_idx(f); }, {"read_idx", f, "absurd dims", "overflows"});
  write_bytes(f, idx({0xFFu, 0, 0xFF0000FFu, 0xFF000000u}));
  check_error<std::runtime_error>([&] { sorix::data::read_idx_u8(f); }, {"read_idx", f, "overflows"});
  write_bytes(dir.file("train-images-idx3-ubyte"), idx({0, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx({0}));
  check_error<std::runtime_error>([&] { sorix::data::load_fashion_mnist(dir.path.string(), true); },
                                  {"train-images-idx3-ubyte", "absurd dims [0, 4294967295, 4294967295]"});
  // Zero dims beside small ones stay valid (an empty data set).
  write_bytes(f, idx({0, 28, 28}));
  CHECK(sorix::data::read_idx(f).shape() == sorix::Shape{0, 28, 28});
  CHECK(sorix::data::read_idx(f).dtype() == sorix::Dtype::UInt8);  // images keep the file's bytes
}

TEST_CASE("ImageDataset: an image shape whose element count overflows is refused, not wrapped", "[data][fuzz]") {
  // 2^32 * 2^32 wrapped to 0 bytes per image, which "matched" an empty pixel buffer.
  const sorix::Shape huge{std::int64_t{1} << 32, std::int64_t{1} << 32};
  check_error<std::invalid_argument>(
      [&] { sorix::data::ImageDataset({}, huge, sorix::zeros({1}, sorix::Dtype::Int64)); },
      {"ImageDataset", "[4294967296, 4294967296]", "overflows"});
  check_error<std::invalid_argument>(
      [&] { sorix::data::ImageDataset({}, huge, sorix::zeros({0}, sorix::Dtype::Int64)); }, {"ImageDataset", "overflows"});
}
