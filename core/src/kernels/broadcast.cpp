#include "sorix_core/kernels/broadcast.hpp"

#include "sorix_core/internal.hpp"

namespace sorix::kernels {

namespace {
std::vector<std::size_t> row_major_strides(const std::vector<std::size_t>& shape) {
  std::vector<std::size_t> strides(shape.size(), 1);
  for (std::size_t k = shape.size(); k-- > 1;) strides[k - 1] = strides[k] * shape[k];
  return strides;
}
}  // namespace

BroadcastPlan broadcast_plan(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b,
                             const char* op) {
  return broadcast_plan(a, row_major_strides(a), b, row_major_strides(b), op);
}

BroadcastPlan broadcast_plan(const std::vector<std::size_t>& a, const std::vector<std::size_t>& a_strides,
                             const std::vector<std::size_t>& b, const std::vector<std::size_t>& b_strides,
                             const char* op) {
  const std::size_t nd = std::max(a.size(), b.size());
  BroadcastPlan plan;
  plan.out_shape.assign(nd, 1);
  std::vector<std::size_t> sa(nd, 0), sb(nd, 0);
  for (std::size_t k = nd; k-- > 0;) {
    const std::size_t off_a = nd - a.size(), off_b = nd - b.size();
    const std::size_t da = k >= off_a ? a[k - off_a] : 1;
    const std::size_t db = k >= off_b ? b[k - off_b] : 1;
    if (da != db && da != 1 && db != 1) {
      throw std::invalid_argument(error_message(op, "shapes ", detail::to_shape(a), " and ", detail::to_shape(b),
                                                " cannot be broadcast together (dim ", k, ": ", da, " vs ", db,
                                                "; sizes must match or be 1)"));
    }
    plan.out_shape[k] = da == 1 ? db : da;
    sa[k] = da == 1 ? 0 : a_strides[k - off_a];
    sb[k] = db == 1 ? 0 : b_strides[k - off_b];
  }
  plan.numel = 1;
  for (std::size_t d : plan.out_shape) plan.numel *= d;
  // Collapse: drop size-1 dims, merge a dim into the previous group when both operands walk
  // them as one contiguous (or one broadcast) run.
  for (std::size_t k = 0; k < nd; ++k) {
    const std::size_t d = plan.out_shape[k];
    if (d == 1) continue;
    if (!plan.dims.empty() && plan.a_strides.back() == sa[k] * d && plan.b_strides.back() == sb[k] * d) {
      plan.dims.back() *= d;
      plan.a_strides.back() = sa[k];
      plan.b_strides.back() = sb[k];
    } else {
      plan.dims.push_back(d);
      plan.a_strides.push_back(sa[k]);
      plan.b_strides.push_back(sb[k]);
    }
  }
  return plan;
}

}  // namespace sorix::kernels
