// Embedding: the row lookup and its gradient, a deterministic scatter-add, each the other's
// gradient (so create_graph works to any order).
#include "sorix/nn/embedding.hpp"

#include <sstream>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/scatter.hpp"
#include "sorix/nn/init.hpp"

namespace sorix::nn {

namespace {

constexpr std::size_t kCols = 1024;  // columns per scatter task (fixed: never the thread count)
constexpr std::int64_t kNoPadding = -1;

void check_indices(const Tensor& indices, std::int64_t num) {
  const std::int64_t* p = sorix::detail::flat<std::int64_t>(indices);
  const auto n = static_cast<std::size_t>(indices.numel());
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] < 0 || p[i] >= num) {
      throw std::out_of_range(error_message("embedding", "index ", p[i], " (at flat position ", i, " of indices ",
                                            indices.shape(), ") is out of range for num_embeddings=", num,
                                            "; expected 0 <= index < ", num));
    }
  }
}

Tensor scatter_rows(const Tensor& g, const Tensor& indices, std::int64_t num, std::int64_t padding);

// out[k, :] = w[idx[k], :] (zeros where idx[k] == padding when zero_padding). Indices checked.
Tensor lookup(const Tensor& w, const Tensor& indices, std::int64_t padding, bool zero_padding) {
  const std::int64_t num = w.shape()[0], dim = w.shape()[1];
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  Tensor out = empty(out_shape, w.dtype());
  const auto K = static_cast<std::size_t>(indices.numel()), D = static_cast<std::size_t>(dim);
  detail::visit_floating(w.dtype(), "embedding", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pw = sorix::detail::flat<T>(w);
    const std::int64_t* pi = sorix::detail::flat<std::int64_t>(indices);
    T* po = sorix::detail::flat<T>(out);
    if (D == 0) return;
    parallel::parallel_for(
        K, std::max<std::size_t>(1, parallel::kChunkSize / D),
        [&](std::size_t k0, std::size_t k1) {
          for (std::size_t k = k0; k < k1; ++k) {
            if (zero_padding && pi[k] == padding) {
              std::fill(po + k * D, po + (k + 1) * D, T(0));
            } else {
              const T* src = pw + static_cast<std::size_t>(pi[k]) * D;
              std::copy(src, src + D, po + k * D);
            }
          }
        },
        parallel::kInlineGrain / D);
  });
  if (autograd::needs_grad({&w})) {
    // Indices are saved with their version: changing them in place before backward is an error.
    autograd::record(out, "EmbeddingBackward", {w},
                     [si = autograd::SavedTensor(indices), num, padding](const Tensor& g) -> std::vector<Tensor> {
                       return {scatter_rows(g, si.unpack("embedding"), num, padding)};
                     });
  }
  return out;
}

// d[r, :] = sum over k with idx[k] == r (in increasing k) of g[k, :]; row `padding` stays zero
// (the kernel layer's one scatter-add, core/internal/sorix_core/kernels/scatter.hpp).
Tensor scatter_rows(const Tensor& g, const Tensor& indices, std::int64_t num, std::int64_t padding) {
  const std::int64_t dim = g.shape().back();
  const auto K = static_cast<std::size_t>(indices.numel()), D = static_cast<std::size_t>(dim),
             R = static_cast<std::size_t>(num);
  const kernels::RowOrder order(sorix::detail::flat<std::int64_t>(indices), K, R);
  Tensor d = empty({num, dim}, g.dtype());
  detail::visit_floating(g.dtype(), "embedding", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = sorix::detail::flat<T>(g);
    T* pd = sorix::detail::flat<T>(d);
    if (D == 0) return;
    const std::size_t col_blocks = (D + kCols - 1) / kCols;
    const std::size_t rows_per_task = std::max<std::size_t>(1, parallel::kChunkSize / std::min(D, kCols));
    const std::size_t row_tasks = (R + rows_per_task - 1) / rows_per_task;
    const bool small = (K + R) * D <= parallel::kInlineGrain;
    parallel::parallel_for(
        row_tasks * col_blocks, 1,
        [&](std::size_t t0, std::size_t t1) {
          for (std::size_t t = t0; t < t1; ++t) {
            const std::size_t r0 = (t / col_blocks) * rows_per_task, r1 = std::min(R, r0 + rows_per_task);
            const std::size_t c0 = (t % col_blocks) * kCols, c1 = std::min(D, c0 + kCols);
            kernels::scatter_add_rows(pg, pd, order, K, R, D, r0, r1, c0, c1, padding);
          }
        },
        small ? row_tasks * col_blocks : 0);
  });
  if (autograd::needs_grad({&g})) {
    // d is linear in g: its gradient is the lookup of the incoming gradient (padding rows zero).
    autograd::record(d, "EmbeddingScatterBackward", {g},
                     [si = autograd::SavedTensor(indices), padding, gshape = g.shape()](const Tensor& gg) -> std::vector<Tensor> {
                       return {reshape(lookup(gg, si.unpack("embedding"), padding, true), gshape)};
                     });
  }
  return d;
}

}  // namespace

namespace functional {

namespace {
Tensor embedding_flat(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  detail::check_defined(indices, "embedding");
  detail::check_defined(weight, "embedding");
  check(indices.dtype() == Dtype::Int64, "embedding", "indices must be an int64 tensor, got ",
        dtype_name(indices.dtype()), " ", indices.shape());
  check(weight.dim() == 2, "embedding", "weight must be 2-D [num_embeddings, embedding_dim], got shape ",
        weight.shape());
  check(is_floating(weight.dtype()), "embedding", "weight must be float32 or float64, got ",
        dtype_name(weight.dtype()));
  const std::int64_t num = weight.shape()[0];
  if (padding_idx) {
    check<std::out_of_range>(*padding_idx >= -num && *padding_idx < num, "embedding", "padding_idx ", *padding_idx,
                             " is out of range for num_embeddings=", num);
    if (*padding_idx < 0) padding_idx = *padding_idx + num;
  }
  check_indices(indices, num);
  return lookup(weight, indices, padding_idx.value_or(kNoPadding), false);
}
}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  // The kernels below read flat memory: views are made contiguous first.
  return embedding_flat(sorix::detail::contiguous_or_undefined(indices), sorix::detail::contiguous_or_undefined(weight), padding_idx);
}

}  // namespace functional

Embedding::Embedding(const EmbeddingOptions& options, Dtype dtype) : options_(options) {
  check(options.num_embeddings() >= 0 && options.embedding_dim() >= 0, "Embedding",
        "num_embeddings and embedding_dim must be >= 0, got ", options.num_embeddings(), " and ",
        options.embedding_dim());
  check(is_floating(dtype), "Embedding", "weight must be float32 or float64, got ", dtype_name(dtype));
  if (auto p = options.padding_idx()) {
    const std::int64_t n = options.num_embeddings();
    check<std::out_of_range>(*p >= -n && *p < n, "Embedding", "padding_idx ", *p,
                             " must be within num_embeddings (", n, ")");
    if (*p < 0) options_.padding_idx(*p + n);
  }
  weight = register_parameter("weight", empty({options.num_embeddings(), options.embedding_dim()}, dtype));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (auto p = options_.padding_idx()) {
    NoGradGuard no_grad;
    // Zero the padding row in place (the parameter keeps its storage).
    detail::visit_floating(weight.dtype(), "Embedding", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const auto D = static_cast<std::size_t>(options_.embedding_dim());
      T* row = sorix::detail::flat<T>(weight) + static_cast<std::size_t>(*p) * D;
      std::fill(row, row + D, T(0));
    });
    ++weight.impl()->storage->version;
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  return functional::embedding(indices, weight, options_.padding_idx());
}

std::string Embedding::extra_repr() const {
  std::ostringstream os;
  os << options_.num_embeddings() << ", " << options_.embedding_dim();
  if (options_.padding_idx()) os << ", padding_idx=" << *options_.padding_idx();
  return os.str();
}

}  // namespace sorix::nn
