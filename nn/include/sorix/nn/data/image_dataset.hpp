#pragma once
// ImageDataset: 8-bit images kept as bytes, handed out as float32 in [0, 1].
//
//   auto train = sorix::data::load_fashion_mnist(dir, true);   // an ImageDataset
//   DataLoader loader(train, DataLoaderOptions(128).shuffle(true).seed(0));
//   for (const auto& b : loader) { ... b.data float32 [128, 784], b.target int64 [128] ... }
//
// Why bytes: a shuffled batch reads scattered rows of the whole training set, and the time goes
// to cache and TLB misses. Bytes are a quarter of float32's memory (47 MB instead of 188 MB for
// Fashion-MNIST's training images) and of the bytes a batch reads; the conversion to float
// happens in the same pass that writes the batch.
//
// Values: pixel p becomes float(p) / 255.0f (a division, exactly as converting the whole dataset
// to float first and dividing would give). Labels are int64.
// Threading: get_batch converts rows in parallel in fixed chunks of rows, so a batch is the same
// for any thread count.
#include <cstdint>
#include <memory>
#include <vector>

#include "sorix/nn/data/dataset.hpp"

namespace sorix::data {

class ImageDataset : public Dataset {
 public:
  /// pixels: N images of prod(image_shape) bytes each, row-major; labels: int64 [N].
  /// Throws std::invalid_argument when pixels.size() is not N * prod(image_shape), labels is not
  /// a 1-D int64 tensor, or image_shape has a negative dimension.
  ImageDataset(const std::vector<std::uint8_t>& pixels, Shape image_shape, Tensor labels);

  std::int64_t size() const override;
  /// Image `index` as float32 of image_shape, and its label (int64 scalar).
  Example get(std::int64_t index) const override;
  /// float32 [count, image_shape...] and int64 [count]; an index out of range throws std::out_of_range.
  Batch get_batch(const std::int64_t* indices, std::int64_t count) const override;
  /// Starts loading those images' bytes towards the cache (software prefetches, nothing else).
  void prefetch(const std::int64_t* indices, std::int64_t count) const override;

  /// Every image as one float32 tensor [N, image_shape...] (converted anew on each call).
  Tensor data() const;
  /// The labels, int64 [N] (shared, not copied).
  const Tensor& targets() const { return labels_; }
  const Shape& image_shape() const { return image_shape_; }

 private:
  std::size_t image_bytes_ = 0;
  std::shared_ptr<std::uint8_t[]> pixels_;  // size() * image_bytes_ bytes
  Shape image_shape_;
  Tensor labels_;
};

}  // namespace sorix::data
