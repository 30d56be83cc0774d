// IDX reader/writer and Fashion-MNIST loading (nn/data/idx.hpp).
#include "sorix/nn/data/idx.hpp"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "sorix_core/internal.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::data {

namespace {

constexpr std::uint8_t kTypeUByte = 0x08;
// Data is read in pieces of this size, so memory grows with the bytes actually present rather
// than with what a (possibly corrupt) header claims.
constexpr std::size_t kReadPiece = std::size_t{1} << 20;

[[noreturn]] void idx_error(const char* op, const std::string& path, const std::string& what) {
  throw std::runtime_error(std::string(op) + ": '" + path + "': " + what);
}

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v & 0xFFu);
  return buf;
}

class GzReader {
 public:
  GzReader(const std::string& path) : path_(path) {
    errno = 0;
    g_ = gzopen(path.c_str(), "rb");
    if (g_ == nullptr) fail(std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "out of memory"));
    gzbuffer(g_, 1 << 17);
  }
  ~GzReader() {
    if (g_ != nullptr) gzclose(g_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  [[noreturn]] void fail(const std::string& what) const { idx_error("read_idx", path_, what); }

  // Reads up to n bytes; fewer only at the end of the data. A decompression error throws.
  std::size_t read(void* p, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      const auto want = static_cast<unsigned>(std::min<std::size_t>(n - got, kReadPiece));
      const int r = gzread(g_, static_cast<char*>(p) + got, want);
      if (r < 0) fail_stream();
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    // gzread reports a truncated or corrupt stream (Z_BUF_ERROR, Z_DATA_ERROR) through gzerror.
    int code = Z_OK;
    gzerror(g_, &code);
    if (code != Z_OK) fail_stream();
    return got;
  }

 private:
  [[noreturn]] void fail_stream() const {
    int code = Z_OK;
    const char* msg = gzerror(g_, &code);
    if (code == Z_ERRNO) fail(std::string("read failed: ") + std::strerror(errno));
    if (code == Z_BUF_ERROR) fail("truncated file (the compressed stream ends early)");
    fail(std::string("corrupt compressed data: ") + (msg != nullptr ? msg : "unknown zlib error"));
  }

  std::string path_;
  gzFile g_ = nullptr;
};

std::string find_file(const std::string& dir, const std::string& name) {
  const std::string base = dir + "/" + name;
  if (::access((base + ".gz").c_str(), R_OK) == 0) return base + ".gz";
  if (::access(base.c_str(), R_OK) == 0) return base;
  throw std::runtime_error("load_fashion_mnist: neither '" + base + ".gz' nor '" + base + "' is readable");
}

}  // namespace

std::pair<std::vector<std::uint8_t>, Shape> read_idx_u8(const std::string& path) {
  GzReader in(path);
  unsigned char head[4];
  const std::size_t got = in.read(head, 4);
  if (got < 4) in.fail("file too short: " + std::to_string(got) + " bytes, the IDX header needs 4");
  if (head[0] != 0 || head[1] != 0) {
    in.fail("bad magic " + hex_byte(head[0]) + " " + hex_byte(head[1]) + " " + hex_byte(head[2]) + " " +
            hex_byte(head[3]) + " (an IDX file starts with 0x00 0x00, a type code and ndim)");
  }
  if (head[2] != kTypeUByte) {
    in.fail("unsupported type code " + hex_byte(head[2]) + " (only 0x08, unsigned byte, is supported)");
  }
  const unsigned ndim = head[3];
  if (ndim == 0) in.fail("ndim is 0 (expected at least 1 dimension)");
  std::vector<unsigned char> dim_bytes(4 * ndim);
  const std::size_t got_dims = in.read(dim_bytes.data(), dim_bytes.size());
  if (got_dims < dim_bytes.size()) {
    in.fail("file too short: the header declares " + std::to_string(ndim) + " dims (" + std::to_string(4 * ndim) +
            " bytes) but only " + std::to_string(got_dims) + " follow");
  }
  Shape shape(ndim);
  // `span` counts zero dims as 1: a tensor of these dims needs its strides to fit even when it is
  // empty, so [0, 2^32-1, 2^32-1, 2^32-1] is refused here rather than by the tensor factory.
  std::uint64_t span = 1;
  bool overflow = false, has_zero = false;
  for (unsigned d = 0; d < ndim; ++d) {
    const unsigned char* b = dim_bytes.data() + 4 * d;
    const std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    shape[d] = static_cast<std::int64_t>(v);
    has_zero = has_zero || v == 0;
    overflow = overflow || __builtin_mul_overflow(span, std::max<std::uint64_t>(v, 1), &span) || span > (std::uint64_t{1} << 60);
  }
  if (overflow) in.fail("absurd dims " + shape_string(shape) + " (their product overflows)");
  const std::uint64_t total = has_zero ? 0 : span;
  std::vector<std::uint8_t> data;
  std::size_t have = 0;
  while (have < total) {
    const std::size_t piece = static_cast<std::size_t>(std::min<std::uint64_t>(kReadPiece, total - have));
    data.resize(have + piece);
    const std::size_t r = in.read(data.data() + have, piece);
    have += r;
    if (r < piece) break;
  }
  if (have < total) {
    in.fail("truncated file: dims " + shape_string(shape) + " need " + std::to_string(total) + " data bytes, found only " +
            std::to_string(have));
  }
  unsigned char extra[1];
  if (in.read(extra, 1) != 0) {
    in.fail("dims " + shape_string(shape) + " account for " + std::to_string(total) +
            " data bytes, but the file has more (dims do not match the data)");
  }
  return {std::move(data), std::move(shape)};
}

void write_idx_u8(const std::string& path, const std::vector<std::uint8_t>& values, const Shape& shape) {
  const char* op = "write_idx_u8";
  check(!shape.empty() && shape.size() <= 255, op, "expected 1 to 255 dims, got ", shape);
  std::uint64_t total = 1;
  for (std::int64_t d : shape) {
    check(d >= 0 && d <= std::int64_t{0xFFFFFFFF}, op, "dims must be in [0, 2^32), got ", shape);
    total *= static_cast<std::uint64_t>(d);
  }
  check(total == values.size(), op, "shape ", shape, " holds ", total, " values but ", values.size(), " were given");
  const bool gz = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  errno = 0;
  gzFile g = gzopen(path.c_str(), gz ? "wb" : "wbT");  // T: plain (transparent) output
  if (g == nullptr) idx_error(op, path, std::string("cannot open for writing: ") + (errno ? std::strerror(errno) : "out of memory"));
  std::vector<unsigned char> head{0, 0, kTypeUByte, static_cast<unsigned char>(shape.size())};
  for (std::int64_t d : shape) {
    const auto v = static_cast<std::uint32_t>(d);
    for (int s = 24; s >= 0; s -= 8) head.push_back(static_cast<unsigned char>((v >> s) & 0xFF));
  }
  bool ok = gzwrite(g, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size());
  for (std::size_t off = 0; ok && off < values.size(); off += kReadPiece) {
    const auto n = static_cast<unsigned>(std::min(kReadPiece, values.size() - off));
    ok = gzwrite(g, values.data() + off, n) == static_cast<int>(n);
  }
  const int close_rc = gzclose(g);
  if (!ok || close_rc != Z_OK) idx_error(op, path, std::string("write failed: ") + std::strerror(errno));
}

Tensor read_idx(const std::string& path) {
  // Named members, not a structured binding: clang before 16 cannot capture bindings in lambdas.
  const auto loaded = read_idx_u8(path);
  const std::vector<std::uint8_t>& bytes = loaded.first;
  const Shape& shape = loaded.second;
  // As torchvision: read_label_file gives int64 (1-D), read_image_file the file's own uint8.
  const Dtype dtype = shape.size() == 1 ? Dtype::Int64 : Dtype::UInt8;
  Tensor t = empty(shape, dtype);
  detail::visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = sorix::detail::flat<T>(t);
    for (std::size_t i = 0; i < bytes.size(); ++i) p[i] = static_cast<T>(bytes[i]);
  });
  return t;
}

ImageDataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  auto [images, ishape] = read_idx_u8(images_path);
  auto [labels, lshape] = read_idx_u8(labels_path);
  const char* op = "load_fashion_mnist";
  if (ishape.size() != 3) idx_error(op, images_path, "expected 3-D images [N, rows, cols], got " + shape_string(ishape));
  if (lshape.size() != 1) idx_error(op, labels_path, "expected 1-D labels [N], got " + shape_string(lshape));
  if (ishape[0] != lshape[0]) {
    idx_error(op, labels_path, std::to_string(lshape[0]) + " labels for " + std::to_string(ishape[0]) + " images in '" +
                                   images_path + "'");
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] > 9) idx_error(op, labels_path, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) + " is not in 0..9");
  }
  // read_idx_u8 bounds the product of the dims (zeros counted as 1) by 2^60, even with no images.
  const std::int64_t pixels_per_image = ishape[1] * ishape[2];
  const std::int64_t n = ishape[0];
  Tensor y = empty({n}, Dtype::Int64);
  std::int64_t* py = sorix::detail::flat<std::int64_t>(y);
  for (std::size_t i = 0; i < labels.size(); ++i) py[i] = labels[i];
  return ImageDataset(images, Shape{pixels_per_image}, y);
}

}  // namespace sorix::data
