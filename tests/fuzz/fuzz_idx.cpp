// libFuzzer target: the IDX reader (read_idx_u8, read_idx; plain or gzip-compressed) and the
// Fashion-MNIST loader on top of it. Input: one mode byte, then the bytes.
//   mode % 2 == 0: the bytes are one IDX file.
//   mode % 2 == 1: the next byte b splits the rest: its first (rest * b / 256) bytes are the
//                  images file, the remainder the labels file, loaded with load_fashion_mnist.
#include <sys/stat.h>

#include <cstdint>
#include <exception>
#include <numeric>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sorix;
  static const std::string file = fuzz::scratch_path("data.idx");
  static const std::string dir = [] {
    const std::string d = fuzz::scratch_path("mnist");
    ::mkdir(d.c_str(), 0755);
    return d;
  }();
  if (size < 1) return 0;
  try {
    if (data[0] % 2 == 0) {
      if (!fuzz::write_file(file, data + 1, size - 1)) return 0;
      const auto loaded = data::read_idx_u8(file);
      Tensor t = data::read_idx(file);
      // read_idx is read_idx_u8 as a tensor: int64 for 1-D files, uint8 (the bytes) otherwise.
      const Dtype want = loaded.second.size() == 1 ? Dtype::Int64 : Dtype::UInt8;
      const std::int64_t byte_sum = std::accumulate(loaded.first.begin(), loaded.first.end(), std::int64_t{0});
      if (t.dtype() != want || t.shape() != loaded.second || t.sum().item<std::int64_t>() != byte_sum) {
        __builtin_trap();
      }
    } else {
      if (size < 2) return 0;
      const std::size_t rest = size - 2, split = rest * data[1] / 256;
      if (!fuzz::write_file(dir + "/train-images-idx3-ubyte", data + 2, split) ||
          !fuzz::write_file(dir + "/train-labels-idx1-ubyte", data + 2 + split, rest - split)) {
        return 0;
      }
      data::ImageDataset ds = data::load_fashion_mnist(dir, /*train=*/true);
      if (ds.size() > 0) {
        (void)ds.get(0).data.sum().item<double>();
        data::DataLoader loader(ds, data::DataLoaderOptions(3));
        for (const auto& batch : loader) (void)batch.target.numel();
      }
    }
  } catch (const std::exception&) {
    // The expected outcome for malformed input.
  }
  return 0;
}
