// ImageDataset (nn/data/image_dataset.hpp).
#include "sorix/nn/data/image_dataset.hpp"

#include <cstring>
#include <stdexcept>

#include "sorix_core/internal.hpp"
#include "sorix_core/kernels/table.hpp"
#include "data/row_gather.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::data {

namespace {

// out[i] = float(in[i]) / 255.0f, bit for bit (the kernel layer's conversion).
void bytes_to_unit_floats(const std::uint8_t* in, float* out, std::size_t n) {
  kernels::active().bytes_to_unit_f32(in, out, n);
}

Shape with_leading(std::int64_t n, const Shape& rest) {
  Shape s{n};
  s.insert(s.end(), rest.begin(), rest.end());
  return s;
}

}  // namespace

ImageDataset::ImageDataset(const std::vector<std::uint8_t>& pixels, Shape image_shape, Tensor labels)
    : image_shape_(std::move(image_shape)), labels_(std::move(labels)) {
  const char* op = "ImageDataset";
  check(labels_.defined() && labels_.dim() == 1 && labels_.dtype() == Dtype::Int64, op,
        "labels must be a 1-D int64 tensor, got ",
        labels_.defined() ? dtype_name(labels_.dtype()) + shape_string(labels_.shape()) : std::string("undefined"));
  for (std::int64_t d : image_shape_) {
    check(d >= 0, op, "image_shape ", shape_string(image_shape_), " has a negative dimension");
  }
  // Overflow-checked: a wrapped product could match a small buffer and let get() read past it.
  const auto per_image = static_cast<std::size_t>(sorix::detail::check_numel(image_shape_, op));
  const auto n = static_cast<std::size_t>(labels_.size(0));
  std::size_t expected = 0;
  check(!__builtin_mul_overflow(n, per_image, &expected), op, n, " images of shape ", shape_string(image_shape_),
        " overflow the byte count");
  check(pixels.size() == expected, op, pixels.size(), " pixel bytes do not make ", n, " images of shape ",
        shape_string(image_shape_), " (", expected, " bytes expected)");
  image_bytes_ = per_image;
  // Huge pages: shuffled batches read rows all over the buffer, and with 4 KiB pages nearly every
  // row costs a TLB miss (a two-level page walk under a hypervisor).
  pixels_ = sorix::detail::allocate_huge_page_buffer(pixels.size());
  if (!pixels.empty()) std::memcpy(pixels_.get(), pixels.data(), pixels.size());
}

std::int64_t ImageDataset::size() const { return labels_.size(0); }

Example ImageDataset::get(std::int64_t index) const {
  check<std::out_of_range>(index >= 0 && index < size(), "ImageDataset::get", "index ", index,
                           " out of range for a dataset of size ", size());
  Tensor x = empty(image_shape_, Dtype::Float32);
  bytes_to_unit_floats(pixels_.get() + static_cast<std::size_t>(index) * image_bytes_, sorix::detail::flat<float>(x),
                       image_bytes_);
  Tensor y = empty({}, Dtype::Int64);
  sorix::detail::flat<std::int64_t>(y)[0] = sorix::detail::flat<std::int64_t>(labels_)[index];
  return Example{x, y};
}

Batch ImageDataset::get_batch(const std::int64_t* indices, std::int64_t count) const {
  const char* op = "ImageDataset::get_batch";
  check(count >= 0 && (count == 0 || indices != nullptr), op, "invalid batch of ", count, " indices");
  row_gather::check_indices(op, indices, count, size());
  Tensor x = empty(with_leading(count, image_shape_), Dtype::Float32);
  Tensor y = empty({count}, Dtype::Int64);
  float* px = sorix::detail::flat<float>(x);
  const std::size_t per = image_bytes_;
  row_gather::gather_rows(pixels_.get(), per, indices, static_cast<std::size_t>(count), per * sizeof(float),
                      [&](std::size_t r, const unsigned char* row) { bytes_to_unit_floats(row, px + r * per, per); });
  const std::int64_t* labels = sorix::detail::flat<std::int64_t>(labels_);
  std::int64_t* py = sorix::detail::flat<std::int64_t>(y);
  for (std::int64_t i = 0; i < count; ++i) py[i] = labels[indices[i]];
  return Batch{x, y};
}

void ImageDataset::prefetch(const std::int64_t* indices, std::int64_t count) const {
  if (indices == nullptr) return;
  row_gather::prefetch_rows(pixels_.get(), image_bytes_, indices, count, size());
}

Tensor ImageDataset::data() const {
  Tensor x = empty(with_leading(size(), image_shape_), Dtype::Float32);
  float* px = sorix::detail::flat<float>(x);
  const std::uint8_t* src = pixels_.get();
  parallel::parallel_for(static_cast<std::size_t>(size()) * image_bytes_, parallel::kChunkSize,
                         [&](std::size_t b, std::size_t e) { bytes_to_unit_floats(src + b, px + b, e - b); });
  return x;
}

}  // namespace sorix::data
