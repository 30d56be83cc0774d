// Printing in PyTorch's form: tensor([[1., 2.], [3., 4.]], dtype=float64, requires_grad=True).
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "sorix_core/internal.hpp"

namespace sorix {

std::string shape_string(const Shape& s) {
  std::ostringstream os;
  detail::append(os, s);
  return os.str();
}

namespace {

template <class T>
void print_value(std::ostream& os, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "True" : "False");  // as PyTorch
  } else if constexpr (std::is_integral_v<T>) {
    os << static_cast<std::int64_t>(v);  // a uint8 as a number, not a character
  } else if (std::isnan(v)) {
    os << "nan";  // not "-nan": the sign of a NaN means nothing (as PyTorch)
  } else {
    std::ostringstream tmp;
    tmp << std::setprecision(4) << v;
    std::string s = tmp.str();
    if (s.find_first_of(".eEn") == std::string::npos) s += '.';
    os << s;
  }
}

// Prints dims [d, ndim) of the block starting at `offset`; long dims show their ends only.
template <class T>
void print_block(std::ostream& os, const T* p, const Shape& shape, std::size_t d, std::size_t offset,
                 std::size_t indent) {
  const std::size_t n = static_cast<std::size_t>(shape[d]);
  std::size_t stride = 1;
  for (std::size_t k = d + 1; k < shape.size(); ++k) stride *= static_cast<std::size_t>(shape[k]);
  const bool summarise = n > 12;
  os << '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (summarise && i == 3) {
      os << "...";
      i = n - 3;
      os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    if (d + 1 == shape.size()) {
      print_value(os, p[offset + i]);
    } else {
      print_block(os, p, shape, d + 1, offset + i * stride, indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(";
  const Shape shape = t.shape();
  const Tensor flat = detail::contiguous_copy_if_needed(t);
  detail::visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = detail::flat<T>(flat);
    if (shape.empty()) {
      print_value(os, p[0]);
    } else if (t.numel() == 0) {
      // As PyTorch: tensor([]) for 1-D, tensor([], size=(0, 3)) otherwise.
      os << "[]";
      if (shape.size() > 1) {
        os << ", size=(";
        for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
        os << ')';
      }
    } else {
      print_block(os, p, shape, 0, 0, 7);
    }
  });
  // float32 and int64 are the default floating and integer dtypes and bool prints as True/False:
  // the others are named (as PyTorch).
  if (t.dtype() != Dtype::Float32 && t.dtype() != Dtype::Int64 && t.dtype() != Dtype::Bool) {
    os << ", dtype=" << dtype_name(t.dtype());
  }
  if (t.grad_fn()) {
    os << ", grad_fn=<" << autograd::node_name(*t.grad_fn()) << ">";
  } else if (t.requires_grad()) {
    os << ", requires_grad=True";
  }
  return os << ')';
}

std::string to_string(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace sorix
