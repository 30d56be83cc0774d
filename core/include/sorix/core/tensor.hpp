#pragma once
// sorix::Tensor — a cheap handle (shared ownership, like torch::Tensor) on a strided view of flat,
// shared storage of dtype float32, float64, int64, int32, uint8 or bool (sorix/core/dtype.hpp).
//
// Tensor model: a tensor is (storage, storage_offset, sizes, strides). Element (i0, i1, ...) lives
// at storage[offset + i0*stride0 + i1*stride1 + ...]; strides are in elements and never negative.
// Factories and ops return contiguous (row-major, offset 0) tensors that own fresh storage. The
// shape ops view, reshape (when possible), transpose, t, permute, slice, narrow, select, squeeze,
// unsqueeze, flatten, expand (stride 0), unfold, split, chunk, unbind, as_strided and basic
// index() return views: new sizes and strides over the same storage, so writes through a view
// land in its base, and in-place changes of the base show in the view. Kernels run over flat
// memory: an op given a non-contiguous input first makes it contiguous (one strided copy, a
// kernel of the kernel layer); contiguous inputs are used as they are.
//
// Ownership: copying a Tensor copies the handle; both see the same data. detach() gives a new
// handle on the same storage and geometry without autograd history.
//
// Autograd: a tensor created by an op on inputs that require grad records its grad_fn (a Node of
// the graph). backward() accumulates gradients into leaf tensors' grad(). A version counter on
// the storage (so shared by every view of it) detects in-place changes to a tensor that
// backward still needs. Views are differentiable (the gradient of a view lands in the matching
// elements of its base's gradient), and an in-place op on a view of a non-leaf tensor rewrites
// the base's history as PyTorch does (CopySlices): the base's gradient then flows through the
// op. An in-place op on a view of a leaf that requires grad is refused while grad mode is on.
//
// Threading and determinism: every op runs its kernel as fixed chunks in the library's TBB arena
// (sorix::parallel); results are bit-identical for any thread count (docs/determinism.md).
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "sorix/core/dtype.hpp"
#include "sorix/core/indexing.hpp"
#include "sorix/core/scalar.hpp"

namespace sorix {

namespace autograd {
class Node;
}
class Generator;

/// Sizes of a tensor's dimensions. Signed, as PyTorch's, so user code may pass int variables.
using Shape = std::vector<std::int64_t>;

/// Flat element buffer of one dtype (the buffer type of xt::xarray<T>).
template <class T>
using Buffer = typename xt::xarray<T>::storage_type;

/// Shared, versioned, flat storage of one dtype. Tensors view it through their geometry.
struct Storage {
  // Alternative i holds Dtype i (the enum's order).
  std::variant<Buffer<float>, Buffer<double>, Buffer<std::int64_t>, Buffer<bool>, Buffer<std::uint8_t>,
               Buffer<std::int32_t>>
      data;
  /// Bumped by every in-place change through any tensor on this storage; saved tensors remember
  /// it (autograd::SavedTensor), so a change through a view is caught too.
  std::uint64_t version = 0;
};

class Tensor;

/// What a Tensor handle points to.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;                       // in elements, >= 0 (0: a dim made by expand)
  std::int64_t offset = 0;             // of element (0, 0, ...) in the storage
  std::int64_t numel = 1;
  bool contiguous = true;              // row-major with no gaps (cached: is_contiguous())
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;              // accumulated gradient (leaves)
  std::shared_ptr<autograd::Node> grad_fn;       // the op that produced this tensor, if recorded
  /// Views made by view ops: the tensor whose memory this one views (itself never a view). An
  /// in-place op through the view rewrites the base's history (see the header comment).
  std::shared_ptr<TensorImpl> view_base;
  /// A view whose base could not be tracked (a view of a non-contiguous tensor that is not
  /// itself a view): in-place ops on it with autograd are refused.
  bool untracked_view = false;
  /// Bumped when an in-place op through a view rewrites this (base) tensor's grad_fn; a view
  /// whose `base_generation` lags rebuilds its grad_fn from the base's when asked.
  std::uint64_t generation = 0;
  std::uint64_t base_generation = 0;
  /// Sets sizes and strides and the cached numel and contiguity.
  void set_geometry(Shape new_sizes, Shape new_strides, std::int64_t new_offset);
};

namespace indexing {
struct TensorIndex;
}

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
  explicit Tensor(xt::xarray<bool> a, bool requires_grad = false);
  explicit Tensor(xt::xarray<std::uint8_t> a, bool requires_grad = false);
  explicit Tensor(xt::xarray<std::int32_t> a, bool requires_grad = false);

  // ---- information -------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  Dtype dtype() const;
  Shape shape() const;
  std::int64_t dim() const;
  /// Size of dimension d (negative d counts from the end).
  std::int64_t size(std::int64_t d) const;
  std::int64_t numel() const;
  /// Strides in elements, one per dim (as PyTorch's stride()).
  Shape stride() const;
  std::int64_t stride(std::int64_t d) const;
  /// Index of element (0, 0, ...) in the storage.
  std::int64_t storage_offset() const;
  /// Row-major with no gaps (size-1 dims may have any stride; an empty tensor is contiguous).
  bool is_contiguous() const;
  /// Made by a view op: shares its base's storage (see the header comment).
  bool is_view() const;
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
  /// True when both handles are the same tensor (one TensorImpl).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  /// An xtensor expression over this tensor's elements: an xt::adapt of the strided memory with
  /// this tensor's shape and strides, for any tensor (contiguous or a view). Reads see the
  /// current values; writes land in the tensor's storage (and so in every view of it), without
  /// bumping the version counter or touching autograd; through an expanded (stride-0) view one
  /// memory element is shared by several indices. The adaptor does not own the memory: keep
  /// the tensor alive while using it. The wrong T throws std::invalid_argument naming both dtypes.
  template <class T> auto data();
  template <class T> auto data() const;
  /// Raw pointer to element (0, 0, ...) of this tensor (as PyTorch): storage + storage_offset().
  /// Walk it with stride(); for a contiguous tensor the elements follow in row-major order.
  template <class T> T* data_ptr();
  template <class T> const T* data_ptr() const;
  /// The single element of a one-element tensor, converted to T.
  template <class T> T item() const;

  // ---- conversion and autograd -------------------------------------------------------------
  Tensor to(Dtype d) const;            // differentiable between float dtypes
  Tensor clone() const;                // differentiable copy
  Tensor detach() const;               // same storage and geometry, no history
  /// This tensor when it is contiguous, else a contiguous copy (differentiable).
  Tensor contiguous() const;
  /// Backpropagates from this tensor. `gradient` may be omitted for one-element tensors.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;

  // ---- elementwise (autograd/src/unary.cpp, autograd/src/binary.cpp) ------------------------
  Tensor neg() const;
  Tensor pow(Scalar exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor leaky_relu(double negative_slope = 0.01) const;
  Tensor clamp(std::optional<Scalar> min, std::optional<Scalar> max) const;
  // (autograd/src/unary_math.cpp; the formulas and gradients are documented in sorix/autograd/ops.hpp)
  Tensor sin() const;
  Tensor cos() const;
  Tensor tan() const;
  Tensor sign() const;
  Tensor round() const;
  Tensor floor() const;
  Tensor ceil() const;
  Tensor trunc() const;
  Tensor log1p() const;
  Tensor expm1() const;
  Tensor square() const;
  Tensor rsqrt() const;
  Tensor reciprocal() const;
  Tensor erf() const;
  Tensor clamp_min(Scalar min) const;
  Tensor clamp_max(Scalar max) const;
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
  Tensor gt(Scalar o) const;
  Tensor lt(Scalar o) const;
  Tensor ge(Scalar o) const;
  Tensor le(Scalar o) const;
  Tensor eq(Scalar o) const;
  Tensor ne(Scalar o) const;
  // (autograd/src/logic_ops.cpp) bool results
  Tensor logical_not() const;
  Tensor logical_and(const Tensor& o) const;
  Tensor logical_or(const Tensor& o) const;
  Tensor logical_xor(const Tensor& o) const;
  Tensor isnan() const;
  Tensor isinf() const;
  Tensor isfinite() const;

  // ---- in-place (bump the version; refused on leaves that require grad while grad mode is on)
  Tensor& add_(const Tensor& o);
  Tensor& sub_(const Tensor& o);
  Tensor& mul_(const Tensor& o);
  Tensor& div_(const Tensor& o);
  Tensor& add_(Scalar o);
  Tensor& sub_(Scalar o);
  Tensor& mul_(Scalar o);
  Tensor& div_(Scalar o);
  Tensor& fill_(Scalar value);
  Tensor& zero_();
  Tensor& clamp_(std::optional<Scalar> min, std::optional<Scalar> max);
  /// this ** exponent in place (the dtype kept; a floating result into an integer tensor throws).
  Tensor& pow_(Scalar exponent);
  Tensor& pow_(const Tensor& exponent);
  /// Copies src (broadcast to this tensor's shape, converted to its dtype) into this tensor's
  /// memory: through a view, into its base.
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
  /// libtorch's max(dim): (values, int64 indices); values-only over dims: amax.
  std::tuple<Tensor, Tensor> max(std::int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> min(std::int64_t dim, bool keepdim = false) const;
  Tensor amax(const std::vector<std::int64_t>& dims = {}, bool keepdim = false) const;
  Tensor amin(const std::vector<std::int64_t>& dims = {}, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(std::int64_t dim, bool keepdim = false) const;
  Tensor argmin() const;
  Tensor argmin(std::int64_t dim, bool keepdim = false) const;
  Tensor softmax(std::int64_t dim) const;
  Tensor log_softmax(std::int64_t dim) const;
  // (issue 12's ops; the semantics, dtypes and gradients are documented in sorix/autograd/ops.hpp)
  Tensor var(const std::vector<std::int64_t>& dims = {}, std::int64_t correction = 1, bool keepdim = false) const;
  Tensor std(const std::vector<std::int64_t>& dims = {}, std::int64_t correction = 1, bool keepdim = false) const;
  Tensor norm(double p = 2.0, const std::vector<std::int64_t>& dims = {}, bool keepdim = false) const;
  Tensor logsumexp(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor all(const std::vector<std::int64_t>& dims = {}, bool keepdim = false) const;
  Tensor any(const std::vector<std::int64_t>& dims = {}, bool keepdim = false) const;
  bool allclose(const Tensor& other, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false) const;
  bool equal(const Tensor& other) const;
  Tensor cumsum(std::int64_t dim) const;
  Tensor cumprod(std::int64_t dim) const;
  Tensor prod() const;
  Tensor prod(std::int64_t dim, bool keepdim = false) const;
  std::tuple<Tensor, Tensor> sort(std::int64_t dim = -1, bool descending = false) const;
  Tensor argsort(std::int64_t dim = -1, bool descending = false) const;
  std::tuple<Tensor, Tensor> topk(std::int64_t k, std::int64_t dim = -1, bool largest = true, bool sorted = true) const;
  Tensor repeat(const std::vector<std::int64_t>& repeats) const;
  Tensor diag(std::int64_t diagonal = 0) const;

  // ---- linear algebra (autograd/src/matmul.cpp) ---------------------------------------------
  Tensor matmul(const Tensor& o) const;
  Tensor bmm(const Tensor& o) const;

  // ---- views (autograd/src/view.cpp): share this tensor's storage ----------------------------
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  /// A view when the strides allow it, else a contiguous copy (as PyTorch).
  Tensor reshape(const Shape& shape) const;
  /// Always a view; throws when the strides do not allow one (use reshape()).
  Tensor view(const Shape& shape) const;
  Tensor squeeze() const;
  Tensor squeeze(std::int64_t dim) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor select(std::int64_t dim, std::int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor expand_as(const Tensor& other) const;
  Tensor unfold(std::int64_t dim, std::int64_t size, std::int64_t step) const;
  Tensor as_strided(const Shape& sizes, const Shape& strides, std::optional<std::int64_t> storage_offset = {}) const;
  std::vector<Tensor> split(std::int64_t split_size, std::int64_t dim = 0) const;
  std::vector<Tensor> chunk(std::int64_t chunks, std::int64_t dim = 0) const;
  std::vector<Tensor> unbind(std::int64_t dim = 0) const;

  // ---- indexing (autograd/src/index.cpp, autograd/src/indexing.cpp) -------------------------
  Tensor index_select(std::int64_t dim, const Tensor& index) const;
  Tensor gather(std::int64_t dim, const Tensor& index) const;
  /// libtorch's Tensor::index: integers, Slice, None, Ellipsis, bool (or uint8) masks and int64 tensors
  /// (sorix/core/indexing.hpp). Only basic indices (no tensors): a view.
  Tensor index(const std::vector<indexing::TensorIndex>& indices) const;
  /// Writes `value` (broadcast) into the elements index(indices) names; for basic indices that
  /// is a view, so the write lands in this tensor.
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& value);
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, Scalar value);
  /// select(0, i): a view.
  Tensor operator[](std::int64_t i) const;
  /// Where mask (bool, or uint8 as PyTorch 1.13 still takes; broadcast to this shape) is true:
  /// value (converted to this dtype). Any other mask dtype throws, as PyTorch.
  Tensor masked_fill(const Tensor& mask, Scalar value) const;
  Tensor masked_fill(const Tensor& mask, const Tensor& value) const;
  Tensor& masked_fill_(const Tensor& mask, Scalar value);
  Tensor& masked_fill_(const Tensor& mask, const Tensor& value);
  /// The elements where mask (bool or uint8) is true, as a 1-D copy (row-major order).
  Tensor masked_select(const Tensor& mask) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

namespace indexing {
/// One entry of an index list (see sorix/core/indexing.hpp).
struct TensorIndex {
  enum class Kind { None, Ellipsis, Integer, Boolean, Slice, Tensor };
  TensorIndex(std::nullopt_t) : kind(Kind::None) {}                      // NOLINT: implicit by design
  TensorIndex(EllipsisIndexType) : kind(Kind::Ellipsis) {}               // NOLINT
  TensorIndex(const char* s);                                            // NOLINT: "..." only
  TensorIndex(std::int64_t i) : kind(Kind::Integer), integer(i) {}       // NOLINT
  TensorIndex(int i) : kind(Kind::Integer), integer(i) {}                // NOLINT
  TensorIndex(bool b) : kind(Kind::Boolean), boolean(b) {}               // NOLINT
  TensorIndex(Slice s) : kind(Kind::Slice), slice(s) {}                  // NOLINT
  TensorIndex(sorix::Tensor t) : kind(Kind::Tensor), tensor(std::move(t)) {}  // NOLINT
  Kind kind;
  std::int64_t integer = 0;
  bool boolean = false;
  Slice slice;
  sorix::Tensor tensor;
};
}  // namespace indexing

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
Tensor tensor(const xt::xarray<bool>& a);
Tensor tensor(const xt::xarray<std::uint8_t>& a);
Tensor tensor(const xt::xarray<std::int32_t>& a);
/// A bool tensor: tensor({true, false}).
Tensor tensor(std::initializer_list<bool> values);

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
Tensor operator+(const Tensor& a, Scalar b);
Tensor operator-(const Tensor& a, Scalar b);
Tensor operator*(const Tensor& a, Scalar b);
Tensor operator/(const Tensor& a, Scalar b);
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, Scalar b);
Tensor& operator-=(Tensor& a, Scalar b);
Tensor& operator*=(Tensor& a, Scalar b);
Tensor& operator/=(Tensor& a, Scalar b);

// ---- template definitions ---------------------------------------------------------------------
namespace detail {
[[noreturn]] void throw_dtype_mismatch(const char* op, Dtype requested, Dtype actual);
[[noreturn]] void throw_undefined(const char* op);
}  // namespace detail

template <class T>
T* Tensor::data_ptr() {
  if (!impl_) detail::throw_undefined("data_ptr");
  auto* p = std::get_if<Buffer<T>>(&impl_->storage->data);
  if (p == nullptr) detail::throw_dtype_mismatch("data_ptr", dtype_of_v<T>, dtype());
  return p->data() + impl_->offset;
}
template <class T>
const T* Tensor::data_ptr() const {
  return const_cast<Tensor*>(this)->data_ptr<T>();
}
namespace detail {
/// Elements spanned by a view from its first element: 1 + sum (size - 1) * stride (0 if empty).
std::size_t span_of(const TensorImpl& impl);
template <class P>
auto adapt_tensor(P* first, const TensorImpl& impl) {
  std::vector<std::size_t> shape(impl.sizes.begin(), impl.sizes.end());
  std::vector<std::ptrdiff_t> strides(impl.strides.begin(), impl.strides.end());
  return xt::adapt(first, span_of(impl), xt::no_ownership(), shape, strides);
}
}  // namespace detail
template <class T>
auto Tensor::data() {
  T* first = data_ptr<T>();  // throws on an undefined tensor before *impl_ is read
  return detail::adapt_tensor(first, *impl_);
}
template <class T>
auto Tensor::data() const {
  const T* first = data_ptr<T>();  // as above
  return detail::adapt_tensor(first, *impl_);
}

}  // namespace sorix
