// Loss sums over the batch by the batch tree (batch_sum.hpp).
#include "batch_sum.hpp"

#include <limits>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix/parallel/batch_tree.hpp"

namespace sorix::nn::batch {

std::int64_t batch_rows(const Tensor& l) {
  if (l.dim() == 0) return 1;
  const parallel::BatchShard* shard = parallel::batch_shard();
  return shard != nullptr ? static_cast<std::int64_t>(shard->global_rows) : l.size(0);
}

Tensor batch_tree_sum(const Tensor& l_in) {
  sorix::detail::check_defined(l_in, "batch_tree_sum");
  check(is_floating(l_in.dtype()), "batch_tree_sum", "expected a floating loss, got ", dtype_name(l_in.dtype()));
  if (l_in.dim() == 0) return l_in;
  const Tensor l = l_in.contiguous();
  const std::size_t rows = static_cast<std::size_t>(l.size(0));
  const std::size_t per = rows == 0 ? 0 : static_cast<std::size_t>(l.numel()) / rows;
  Tensor out = sorix::detail::visit_floating(l.dtype(), "batch_tree_sum", [&](auto tag) -> Tensor {
    using T = typename decltype(tag)::type;
    const T* x = sorix::detail::flat<T>(l);
    std::vector<T> row_sums(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      T acc = 0;
      for (std::size_t j = 0; j < per; ++j) acc += x[r * per + j];
      row_sums[r] = acc;
    }
    T total = 0;
    kernels::batch_sum_rows(row_sums.data(), &total, rows, 1);
    const parallel::BatchShard* shard = parallel::batch_shard();
    if (shard != nullptr && shard->reducer != nullptr) shard->reducer->finish(&total, 1);
    return scalar_tensor(static_cast<double>(total), l.dtype());
  });
  if (autograd::needs_grad({&l_in})) {
    autograd::record(out, "BatchTreeSumBackward", {l_in},
                     [shape = l_in.shape()](const Tensor& g) -> std::vector<Tensor> { return {g.expand(shape)}; });
  }
  return out;
}

Tensor batch_tree_mean(const Tensor& l) {
  const Tensor s = batch_tree_sum(l);
  std::int64_t per = 1;
  for (std::int64_t d = 1; d < l.dim(); ++d) per *= l.size(d);
  const std::int64_t n = l.dim() == 0 ? 1 : batch_rows(l) * per;
  return n == 0 ? s * std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(n);
}

}  // namespace sorix::nn::batch
