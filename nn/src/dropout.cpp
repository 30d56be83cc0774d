// Dropout: forward (fused Philox + keep test + scale + store, mask bits written in the same
// pass) and its gradient side by side.
#include "sorix/nn/dropout.hpp"

#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix/core/philox.hpp"
#include "sorix/parallel/batch_tree.hpp"

namespace sorix::nn {

namespace {

void check_p(double p) {
  if (!(p >= 0.0 && p <= 1.0)) {
    std::ostringstream os;
    os << "dropout: probability has to be between 0 and 1, but got " << p;
    throw std::invalid_argument(os.str());
  }
}

// The random words of one call: where its stream starts and the keep threshold.
// offset: the stream index of element 0 (a rank's first row times the row length under a batch
// shard, so that an element's mask is that of its global row, whatever the split; 0 otherwise).
struct Stream {
  std::uint64_t key;
  std::uint64_t base;
  std::uint64_t threshold;
  std::size_t offset = 0;
};

template <class T>
void forward_kernel(const Stream& s, const T* x, T* y, std::size_t n, T scale, std::uint8_t* bits) {
  // Chunks are multiples of 64 elements, so each owns whole mask bytes.
  static_assert(parallel::kChunkSize % 64 == 0);
  parallel::parallel_for(n, parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
    std::uint8_t* chunk_bits = bits != nullptr ? bits + b / 8 : nullptr;
    if constexpr (std::is_same_v<T, float>) {
      rng::dropout_forward_f32(s.key, s.base, s.offset + b, x + b, y + b, e - b, s.threshold, scale, chunk_bits);
    } else {
      rng::dropout_forward_f64(s.key, s.base, s.offset + b, x + b, y + b, e - b, s.threshold, scale, chunk_bits);
    }
  });
}

template <class T>
void backward_kernel(const Stream& s, const T* g, T* gx, std::size_t n, T scale, const std::uint8_t* bits) {
  parallel::parallel_for(n, parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
    if constexpr (std::is_same_v<T, float>) {
      if (bits != nullptr) rng::dropout_backward_bits_f32(g + b, bits + b / 8, gx + b, e - b, scale);
      else rng::dropout_backward_regen_f32(s.key, s.base, s.offset + b, g + b, gx + b, e - b, s.threshold, scale);
    } else {
      if (bits != nullptr) rng::dropout_backward_bits_f64(g + b, bits + b / 8, gx + b, e - b, scale);
      else rng::dropout_backward_regen_f64(s.key, s.base, s.offset + b, g + b, gx + b, e - b, s.threshold, scale);
    }
  });
}

// The mask as a 0/1 tensor (only for a backward that is itself recorded: create_graph).
template <class T>
Tensor mask_tensor(const Stream& s, const Shape& shape, std::size_t n, const std::uint8_t* bits) {
  Tensor ones_t = ones(shape, dtype_of_v<T>);
  Tensor m = empty(shape, dtype_of_v<T>);
  backward_kernel<T>(s, sorix::detail::flat<T>(ones_t), sorix::detail::flat<T>(m), n, T(1), bits);
  return m;
}

}  // namespace

namespace functional {

namespace {
Tensor dropout_flat(const Tensor& input, double p, bool training, Generator* generator, DropoutMask mask) {
  check_p(p);
  detail::check_defined(input, "dropout");
  check(is_floating(input.dtype()), "dropout", "expected a float32 or float64 tensor, got ", dtype_name(input.dtype()));
  if (!training || p == 0.0) return input;

  Generator& gen = generator != nullptr ? *generator : default_generator();
  const std::size_t n = static_cast<std::size_t>(input.numel());
  // Under a batch shard (one rank of nn::DistributedDataParallel) the stream is the whole batch's:
  // every rank reserves the global batch's counters (generators stay in step) and reads its rows.
  std::size_t stream_n = n, offset = 0;
  if (const parallel::BatchShard* shard = parallel::batch_shard(); shard != nullptr && input.dim() >= 1) {
    // The row length from the shape (a rank may hold no rows, and must still reserve the stream).
    const std::size_t rows = static_cast<std::size_t>(input.size(0));
    std::size_t row = 1;
    for (std::int64_t d = 1; d < input.dim(); ++d) row *= static_cast<std::size_t>(input.size(d));
    check(shard->first_row + rows <= shard->global_rows, "dropout", "input of ", rows, " rows does not fit rows [",
          shard->first_row, ", ", shard->global_rows, ") of the batch shard");
    stream_n = shard->global_rows * row;
    offset = shard->first_row * row;
  }
  const Stream stream{gen.seed(), gen.reserve(rng::counters_for_u32(stream_n)), rng::dropout_threshold(p), offset};
  const bool record = autograd::needs_grad({&input});
  std::shared_ptr<std::vector<std::uint8_t>> bits;
  if (record && mask == DropoutMask::Bits) bits = std::make_shared<std::vector<std::uint8_t>>((n + 7) / 8);

  Tensor out = empty(input.shape(), input.dtype());
  detail::visit_floating(input.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // 1/(1-p) once, in the tensor's dtype; p == 1 keeps nothing, so its scale is never used.
    const T scale = p == 1.0 ? T(0) : T(1) / (T(1) - static_cast<T>(p));
    forward_kernel<T>(stream, sorix::detail::flat<T>(input), sorix::detail::flat<T>(out), n, scale, bits ? bits->data() : nullptr);
  });

  if (record) {
    autograd::record(out, "DropoutBackward", {input},
                     [stream, bits, p, n, shape = input.shape()](const Tensor& g) -> std::vector<Tensor> {
                       return {detail::visit_floating(g.dtype(), "dropout", [&](auto tag) {
                         using T = typename decltype(tag)::type;
                         const T scale = p == 1.0 ? T(0) : T(1) / (T(1) - static_cast<T>(p));
                         const std::uint8_t* b = bits ? bits->data() : nullptr;
                         if (autograd::grad_enabled()) {  // create_graph: keep the formula differentiable
                           return g * mask_tensor<T>(stream, shape, n, b) * static_cast<double>(scale);
                         }
                         Tensor gx = empty(shape, dtype_of_v<T>);
                         backward_kernel<T>(stream, sorix::detail::flat<T>(g), sorix::detail::flat<T>(gx), n, scale, b);
                         return gx;
                       })};
                     });
  }
  return out;
}
}  // namespace

Tensor dropout(const Tensor& input, double p, bool training, Generator* generator, DropoutMask mask) {
  // The kernels below read flat memory: views are made contiguous first.
  return dropout_flat(sorix::detail::contiguous_or_undefined(input), p, training, generator, mask);
}

}  // namespace functional

Dropout::Dropout(DropoutOptions options) : options_(options) { check_p(options_.p()); }

Tensor Dropout::forward(const Tensor& input) {
  return functional::dropout(input, options_.p(), is_training(), nullptr, options_.mask());
}

std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p=" << options_.p();
  return os.str();
}

}  // namespace sorix::nn
