#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// Layout: bytes 0,1 = 0; byte 2 = type code (0x08 unsigned byte is the only one supported);
// byte 3 = ndim (>= 1); ndim big-endian u32 dims; then prod(dims) values, row-major. A file is
// read through zlib, so ".gz" and plain files are both accepted (whatever the name).
//
// Malformed files (bad magic, unsupported type code, ndim 0, a truncated header, fewer or more
// data bytes than the dims say, a corrupt gzip stream) throw std::runtime_error naming the path
// and the problem. Memory use is bounded by the data actually present, whatever the dims claim.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/data/dataset.hpp"
#include "sorix/nn/data/image_dataset.hpp"

namespace sorix::data {

/// The raw bytes and shape of an unsigned-byte IDX file.
std::pair<std::vector<std::uint8_t>, Shape> read_idx_u8(const std::string& path);

/// Writes an unsigned-byte IDX file (gzip-compressed when path ends with ".gz"). values.size()
/// must equal the product of shape (std::invalid_argument); I/O errors throw std::runtime_error.
void write_idx_u8(const std::string& path, const std::vector<std::uint8_t>& values, const Shape& shape);

/// The raw values of an IDX file as a tensor of its shape, as torchvision's MNIST readers: int64
/// for 1-D files (labels, read_label_file), the file's own uint8 (0..255) otherwise (images,
/// read_image_file); x.to(kFloat32) / 255 scales images to [0, 1].
Tensor read_idx(const std::string& path);

/// Fashion-MNIST (or MNIST: same file names) from `dir`: "{train,t10k}-images-idx3-ubyte[.gz]"
/// and "{train,t10k}-labels-idx1-ubyte[.gz]" (the .gz name is tried first), as an ImageDataset:
/// the images stay bytes and reach the model as float32 [rows*cols] scaled to [0, 1]
/// (value / 255), labels int64. Throws std::runtime_error if a file is missing or malformed, the
/// counts differ, or a label is not in 0..9.
ImageDataset load_fashion_mnist(const std::string& dir, bool train);

}  // namespace sorix::data
