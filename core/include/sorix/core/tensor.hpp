#pragma once
// sorix::Tensor — a cheap handle (shared ownership, like torch::Tensor) over contiguous,
// row-major xt::xarray<T> storage of dtype float32, float64 or int64.
//
// Ownership: copying a Tensor copies the handle; both see the same data. detach() gives a new
// handle on the same storage without autograd history. Shape-changing ops (reshape, view,
// transpose, slicing...) return tensors with their own storage (they copy): every tensor is
// contiguous, so every kernel runs over flat memory.
//
// Autograd: a tensor created by an op on inputs that require grad records its grad_fn (a Node of
// the graph). backward() accumulates gradients into leaf tensors' grad(). A version counter on
// the storage detects in-place changes to a tensor that backward still needs.
//
// Threading and determinism: every op runs its kernel as fixed chunks in the library's TBB arena
// (sorix::parallel); results are bit-identical for any thread count (docs/determinism.md).
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <xtensor/xarray.hpp>

#include "sorix/core/dtype.hpp"

namespace sorix {

namespace autograd {
class Node;
}
class Generator;

/// Sizes of a tensor's dimensions. Signed, as PyTorch's, so user code may pass int variables.
using Shape = std::vector<std::int64_t>;

/// Shared, versioned storage of one dtype. Its shape is the tensor's shape.
struct Storage {
  std::variant<xt::xarray<float>, xt::xarray<double>, xt::xarray<std::int64_t>> data;
  /// Bumped by every in-place change; saved tensors remember it (see autograd/saved.hpp).
  std::uint64_t version = 0;
};

class Tensor;

/// What a Tensor handle points to.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;              // accumulated gradient (leaves)
  std::shared_ptr<autograd::Node> grad_fn;       // the op that produced this tensor, if recorded
};

/// Dtype and requires_grad for factories; a Dtype converts to it: zeros({2, 3}, sorix::float64).
struct TensorOptions {
  Dtype dtype_ = Dtype::Float32;
  bool requires_grad_ = false;
  TensorOptions() = default;
  TensorOptions(Dtype d) : dtype_(d) {}  // NOLINT: implicit by design
  TensorOptions& dtype(Dtype d) { dtype_ = d; return *this; }
  TensorOptions& requires_grad(bool r = true) { requires_grad_ = r; return *this; }
};

class Tensor {
 public:
  /// An undefined tensor (defined() == false), as returned by grad() before a gradient arrives.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  /// Takes ownership of an xarray (moved in).
  explicit Tensor(xt::xarray<float> a, bool requires_grad = false);
  explicit Tensor(xt::xarray<double> a, bool requires_grad = false);
  explicit Tensor(xt::xarray<std::int64_t> a, bool requires_grad = false);

  // ---- information -------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  Dtype dtype() const;
  Shape shape() const;
  std::int64_t dim() const;
  /// Size of dimension d (negative d counts from the end).
  std::int64_t size(std::int64_t d) const;
  std::int64_t numel() const;
  bool requires_grad() const;
  /// Marks a leaf as requiring grad (floating dtypes only). Returns *this.
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;
  /// The accumulated gradient; undefined until backward reaches this tensor.
  Tensor grad() const;
  void set_grad(const Tensor& g);
  std::shared_ptr<autograd::Node> grad_fn() const;
  std::uint64_t version() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True when both handles share one storage.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  /// The backing array; the wrong T throws std::invalid_argument naming both dtypes.
  template <class T> xt::xarray<T>& data();
  template <class T> const xt::xarray<T>& data() const;
  /// Raw pointer to the first element (contiguous, row-major).
  template <class T> T* data_ptr();
  template <class T> const T* data_ptr() const;
  /// The single element of a one-element tensor, converted to T.
  template <class T> T item() const;

  // ---- conversion and autograd -------------------------------------------------------------
  Tensor to(Dtype d) const;            // differentiable between float dtypes
  Tensor clone() const;                // differentiable copy
  Tensor detach() const;               // same storage, no history
  Tensor contiguous() const { return *this; }
  /// Backpropagates from this tensor. `gradient` may be omitted for one-element tensors.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;

  // ---- elementwise (autograd/src/elementwise_*.cpp) -----------------------------------------
  Tensor neg() const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor leaky_relu(double negative_slope = 0.01) const;
  Tensor clamp(std::optional<double> min, std::optional<double> max) const;
  Tensor add(const Tensor& o) const;
  Tensor sub(const Tensor& o) const;
  Tensor mul(const Tensor& o) const;
  Tensor div(const Tensor& o) const;
  Tensor gt(const Tensor& o) const;
  Tensor lt(const Tensor& o) const;
  Tensor ge(const Tensor& o) const;
  Tensor le(const Tensor& o) const;
  Tensor eq(const Tensor& o) const;
  Tensor ne(const Tensor& o) const;
  Tensor gt(double o) const;
  Tensor lt(double o) const;
  Tensor ge(double o) const;
  Tensor le(double o) const;
  Tensor eq(double o) const;
  Tensor ne(double o) const;

  // ---- in-place (bump the version; refused on leaves that require grad while grad mode is on)
  Tensor& add_(const Tensor& o);
  Tensor& sub_(const Tensor& o);
  Tensor& mul_(const Tensor& o);
  Tensor& div_(const Tensor& o);
  Tensor& add_(double o);
  Tensor& sub_(double o);
  Tensor& mul_(double o);
  Tensor& div_(double o);
  Tensor& fill_(double value);
  Tensor& zero_();
  Tensor& clamp_(std::optional<double> min, std::optional<double> max);
  Tensor& copy_(const Tensor& src);
  /// Random fills on counter-based streams (core/random.hpp; nullptr: the default generator).
  Tensor& uniform_(double from = 0.0, double to = 1.0, Generator* generator = nullptr);
  Tensor& normal_(double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
  Tensor& bernoulli_(double p = 0.5, Generator* generator = nullptr);

  // ---- reductions (autograd/src/reduce.cpp) -------------------------------------------------
  Tensor sum() const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor max(std::int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  Tensor min(std::int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(std::int64_t dim, bool keepdim = false) const;
  Tensor argmin() const;
  Tensor argmin(std::int64_t dim, bool keepdim = false) const;
  Tensor softmax(std::int64_t dim) const;
  Tensor log_softmax(std::int64_t dim) const;

  // ---- linear algebra (autograd/src/matmul.cpp) ---------------------------------------------
  Tensor matmul(const Tensor& o) const;

  // ---- shape and indexing (autograd/src/shape.cpp, autograd/src/index.cpp) ------------------
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor squeeze() const;
  Tensor squeeze(std::int64_t dim) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor index_select(std::int64_t dim, const Tensor& index) const;
  Tensor gather(std::int64_t dim, const Tensor& index) const;
  std::vector<Tensor> split(std::int64_t split_size, std::int64_t dim = 0) const;
  std::vector<Tensor> chunk(std::int64_t chunks, std::int64_t dim = 0) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// ---- factories (core/src/factories.cpp) -------------------------------------------------------
Tensor tensor(std::initializer_list<float> values, bool requires_grad = false);
Tensor tensor(std::initializer_list<double> values, bool requires_grad = false);
Tensor tensor(std::initializer_list<int> values, bool requires_grad = false);          // int64
Tensor tensor(std::initializer_list<std::int64_t> values, bool requires_grad = false); // int64
Tensor tensor(std::initializer_list<std::initializer_list<float>> rows, bool requires_grad = false);
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, bool requires_grad = false);
Tensor tensor(std::initializer_list<std::initializer_list<int>> rows, bool requires_grad = false);
/// Values converted to the given dtype.
Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions options = {});
Tensor tensor(const xt::xarray<float>& a, bool requires_grad = false);
Tensor tensor(const xt::xarray<double>& a, bool requires_grad = false);
Tensor tensor(const xt::xarray<std::int64_t>& a, bool requires_grad = false);

Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
/// [start, end) in steps of `step` (float32 unless a dtype is given).
Tensor arange(double end, TensorOptions options = {});
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = {});
Tensor linspace(double start, double end, std::int64_t steps, TensorOptions options = {});
Tensor eye(std::int64_t n, TensorOptions options = {});
Tensor eye(std::int64_t n, std::int64_t m, TensorOptions options = {});
/// Same shape and (unless given) dtype as `like`; requires_grad false unless given.
Tensor empty_like(const Tensor& like);
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, double value);
Tensor empty_like(const Tensor& like, TensorOptions options);
Tensor zeros_like(const Tensor& like, TensorOptions options);
Tensor ones_like(const Tensor& like, TensorOptions options);
Tensor full_like(const Tensor& like, double value, TensorOptions options);

/// Prints like PyTorch: tensor([...], dtype=float64, requires_grad=True).
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);
/// "[2, 3]"
std::string shape_string(const Shape& s);

// ---- arithmetic operators (elementwise, broadcasting) -----------------------------------------
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, double b);
Tensor& operator-=(Tensor& a, double b);
Tensor& operator*=(Tensor& a, double b);
Tensor& operator/=(Tensor& a, double b);

// ---- template definitions ---------------------------------------------------------------------
namespace detail {
[[noreturn]] void throw_dtype_mismatch(const char* op, Dtype requested, Dtype actual);
[[noreturn]] void throw_undefined(const char* op);
}  // namespace detail

template <class T>
xt::xarray<T>& Tensor::data() {
  if (!impl_) detail::throw_undefined("data");
  auto* p = std::get_if<xt::xarray<T>>(&impl_->storage->data);
  if (p == nullptr) detail::throw_dtype_mismatch("data", dtype_of_v<T>, dtype());
  return *p;
}
template <class T>
const xt::xarray<T>& Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template <class T>
T* Tensor::data_ptr() {
  return data<T>().data();
}
template <class T>
const T* Tensor::data_ptr() const {
  return data<T>().data();
}

}  // namespace sorix
