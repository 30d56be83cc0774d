// Max, average and adaptive average pooling (sorix/nn/pooling.hpp): checks, window geometry, and
// recorded ops over the plane kernels of core/internal/sorix_core/kernels/pool.hpp. A 1-d pool is a 2-d pool over
// planes of height 1.
#include "sorix/nn/pooling.hpp"

#include <memory>
#include <sstream>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/pool.hpp"

namespace sorix::nn {
namespace {

using kernels::MaxPoolGeometry;
using kernels::PoolWindow;

std::size_t sz(std::int64_t v) { return static_cast<std::size_t>(v); }

// An input read as `planes` planes of H x W (its leading dims kept in the output's shape).
struct Planes {
  Shape lead;
  std::size_t planes, H, W;
};

template <std::size_t D>
Planes planes_of(const char* op, const Tensor& x) {
  sorix::detail::check_defined(x, op);
  const Shape s = x.shape();
  check(s.size() == D + 1 || s.size() == D + 2, op, "expected a ", D + 1, "-D (unbatched) or ", D + 2,
        "-D (batched) input, got shape ", s);
  check(is_floating(x.dtype()), op, "expected a floating input (float32 or float64), got ", dtype_name(x.dtype()));
  Planes p;
  p.lead.assign(s.begin(), s.end() - D);
  for (std::size_t i = s.size() - D; i < s.size(); ++i)
    check(s[i] >= 1, op, "expected non-empty spatial dims, got input shape ", s);
  p.planes = sorix::detail::numel_of(p.lead);
  p.H = D == 1 ? 1 : sz(s[s.size() - 2]);
  p.W = sz(s.back());
  return p;
}

Shape out_shape(const Planes& p, std::size_t D, std::size_t OH, std::size_t OW) {
  Shape r = p.lead;
  if (D == 2) r.push_back(static_cast<std::int64_t>(OH));
  r.push_back(static_cast<std::int64_t>(OW));
  return r;
}

// PyTorch's pooling_output_shape.
std::int64_t pooled_size(std::int64_t in, std::int64_t k, std::int64_t pad, std::int64_t stride, std::int64_t dil,
                         bool ceil_mode) {
  const std::int64_t span = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  std::int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

template <std::size_t D>
void check_window(const char* op, const ExpandingArray<D>& k, const ExpandingArray<D>& s, const ExpandingArray<D>& p,
                  const ExpandingArray<D>& d) {
  for (std::size_t i = 0; i < D; ++i) {
    check(k[i] >= 1, op, "kernel_size must be >= 1, got ", k.str());
    check(s[i] >= 1, op, "stride must be >= 1, got ", s.str());
    check(d[i] >= 1, op, "dilation must be >= 1, got ", d.str());
    check(p[i] >= 0 && p[i] <= k[i] / 2, op, "padding must be >= 0 and at most half the kernel size, got padding ",
          p.str(), " with kernel_size ", k.str());
  }
}

// Runs body(plane) for each plane as parallel tasks (several small planes per task).
template <class Body>
void for_each_plane(std::size_t planes, std::size_t work, Body&& body) {
  const std::size_t per_task = std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(1, work));
  parallel::parallel_for(planes, per_task, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) body(q);
  }, per_task);
}

// ---- max pooling: forward, and the scatter / gather pair of its gradients -------------------------

// What the gradients of one max pool need: the winners' indices and the plane sizes.
struct MaxPoolRecord {
  Tensor indices;  // int64 [.., OH, OW]
  Shape in_shape;
  std::size_t planes, plane, outputs;  // planes, elements per input plane, outputs per plane
};

Tensor gather_by_indices(const Tensor& gx, const std::shared_ptr<const MaxPoolRecord>& r);

// dx [in_shape]: each g added at the plane offset its index names.
Tensor scatter_by_indices(const Tensor& g_in, const std::shared_ptr<const MaxPoolRecord>& r) {
  const Tensor g = g_in.contiguous();
  Tensor dx = sorix::detail::visit_floating(g.dtype(), "max_pool (backward)", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::to_xshape(r->in_shape, "max_pool"));
    const T* pg = sorix::detail::flat<T>(g);
    const std::int64_t* pi = sorix::detail::flat<std::int64_t>(r->indices);
    T* pd = sorix::detail::flat<T>(out);
    for_each_plane(r->planes, r->plane + r->outputs, [&](std::size_t q) {
      kernels::max_pool_backward_plane(pg + q * r->outputs, pi + q * r->outputs, r->outputs, pd + q * r->plane, r->plane);
    });
    return out;
  });
  if (autograd::needs_grad({&g_in})) {
    autograd::record(dx, "MaxPoolBackwardBackward", {g_in}, [r](const Tensor& gg) -> std::vector<Tensor> {
      return {gather_by_indices(gg, r)};
    });
  }
  return dx;
}

// y [.., OH, OW] = gx at the winners' indices (the adjoint of scatter_by_indices).
Tensor gather_by_indices(const Tensor& gx_in, const std::shared_ptr<const MaxPoolRecord>& r) {
  const Tensor gx = gx_in.contiguous();
  Tensor y = sorix::detail::visit_floating(gx.dtype(), "max_pool (double backward)", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::to_xshape(r->indices.shape(), "max_pool"));
    const T* px = sorix::detail::flat<T>(gx);
    const std::int64_t* pi = sorix::detail::flat<std::int64_t>(r->indices);
    T* py = sorix::detail::flat<T>(out);
    for_each_plane(r->planes, r->outputs, [&](std::size_t q) {
      kernels::max_pool_gather_plane(px + q * r->plane, pi + q * r->outputs, r->outputs, py + q * r->outputs);
    });
    return out;
  });
  if (autograd::needs_grad({&gx_in})) {
    autograd::record(y, "MaxPoolGatherBackward", {gx_in}, [r](const Tensor& g) -> std::vector<Tensor> {
      return {scatter_by_indices(g, r)};
    });
  }
  return y;
}

template <std::size_t D>
std::pair<Tensor, Tensor> max_pool_nd(const char* op, const Tensor& input, const MaxPoolOptions<D>& o) {
  check_window<D>(op, o.kernel_size(), o.stride(), o.padding(), o.dilation());
  const Planes pl = planes_of<D>(op, input);
  const Tensor x = input.contiguous();
  MaxPoolGeometry g{};
  g.H = pl.H; g.W = pl.W;
  g.kh = 1; g.sh = 1; g.ph = 0; g.dh = 1;
  const std::size_t w = D - 1;  // index of the width in the options
  if (D == 2) {
    g.kh = sz(o.kernel_size()[0]); g.sh = sz(o.stride()[0]); g.ph = sz(o.padding()[0]); g.dh = sz(o.dilation()[0]);
  }
  g.kw = sz(o.kernel_size()[w]); g.sw = sz(o.stride()[w]); g.pw = sz(o.padding()[w]); g.dw = sz(o.dilation()[w]);
  const std::int64_t OH = pooled_size(static_cast<std::int64_t>(g.H), static_cast<std::int64_t>(g.kh),
                                      static_cast<std::int64_t>(g.ph), static_cast<std::int64_t>(g.sh),
                                      static_cast<std::int64_t>(g.dh), o.ceil_mode());
  const std::int64_t OW = pooled_size(static_cast<std::int64_t>(g.W), static_cast<std::int64_t>(g.kw),
                                      static_cast<std::int64_t>(g.pw), static_cast<std::int64_t>(g.sw),
                                      static_cast<std::int64_t>(g.dw), o.ceil_mode());
  check(OH >= 1 && OW >= 1, op, "input shape ", input.shape(), " is too small for kernel_size ",
        o.kernel_size().str(), " (dilation ", o.dilation().str(), ", padding ", o.padding().str(),
        "): the output would be ", OH, " x ", OW);
  g.OH = sz(OH); g.OW = sz(OW);
  const Shape ys = out_shape(pl, D, g.OH, g.OW);
  auto rec = std::make_shared<MaxPoolRecord>();
  rec->in_shape = input.shape();
  rec->planes = pl.planes;
  rec->plane = g.H * g.W;
  rec->outputs = g.OH * g.OW;
  rec->indices = sorix::detail::make_empty<std::int64_t>(sorix::detail::to_xshape(ys, op));
  Tensor y = sorix::detail::visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::to_xshape(ys, op));
    const T* px = sorix::detail::flat<T>(x);
    T* py = sorix::detail::flat<T>(out);
    std::int64_t* pi = sorix::detail::flat<std::int64_t>(rec->indices);
    for_each_plane(pl.planes, rec->outputs * g.kh * g.kw, [&](std::size_t q) {
      kernels::max_pool_plane(px + q * rec->plane, g, py + q * rec->outputs, pi + q * rec->outputs);
    });
    return out;
  });
  if (autograd::needs_grad({&input})) {
    std::shared_ptr<const MaxPoolRecord> r = rec;
    autograd::record(y, D == 1 ? "MaxPool1DBackward" : "MaxPool2DBackward", {input},
                     [r](const Tensor& grad) -> std::vector<Tensor> { return {scatter_by_indices(grad, r)}; });
  }
  return {y, rec->indices};
}

// ---- average pooling: windows and divisors, and the adjoint pair -----------------------------------

struct AvgWindows {
  Shape in_shape, out_shape;
  std::size_t planes, H, W, OH, OW;
  std::vector<PoolWindow> rows, cols;
  std::vector<double> divisor;  // per output position
};

Tensor avg_pool_adjoint(const Tensor& g, const std::shared_ptr<const AvgWindows>& win);

Tensor avg_pool_apply(const Tensor& x_in, const std::shared_ptr<const AvgWindows>& win, const char* op) {
  const Tensor x = x_in.contiguous();
  const AvgWindows& a = *win;
  Tensor y = sorix::detail::visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::to_xshape(a.out_shape, op));
    const T* px = sorix::detail::flat<T>(x);
    T* py = sorix::detail::flat<T>(out);
    for_each_plane(a.planes, a.H * a.W + a.OH * a.OW, [&](std::size_t q) {
      kernels::avg_pool_plane(px + q * a.H * a.W, a.W, a.rows.data(), a.OH, a.cols.data(), a.OW, a.divisor.data(),
                              py + q * a.OH * a.OW);
    });
    return out;
  });
  if (autograd::needs_grad({&x_in})) {
    autograd::record(y, "AvgPoolBackward", {x_in}, [win](const Tensor& grad) -> std::vector<Tensor> {
      return {avg_pool_adjoint(grad, win)};
    });
  }
  return y;
}

Tensor avg_pool_adjoint(const Tensor& g_in, const std::shared_ptr<const AvgWindows>& win) {
  const Tensor g = g_in.contiguous();
  const AvgWindows& a = *win;
  Tensor dx = sorix::detail::visit_floating(g.dtype(), "avg_pool (backward)", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::to_xshape(a.in_shape, "avg_pool"));
    const T* pg = sorix::detail::flat<T>(g);
    T* pd = sorix::detail::flat<T>(out);
    for_each_plane(a.planes, a.H * a.W + a.OH * a.OW, [&](std::size_t q) {
      kernels::avg_pool_backward_plane(pg + q * a.OH * a.OW, a.H, a.W, a.rows.data(), a.OH, a.cols.data(), a.OW,
                                       a.divisor.data(), pd + q * a.H * a.W);
    });
    return out;
  });
  if (autograd::needs_grad({&g_in})) {
    autograd::record(dx, "AvgPoolBackwardBackward", {g_in}, [win](const Tensor& gg) -> std::vector<Tensor> {
      return {avg_pool_apply(gg, win, "avg_pool (double backward)")};
    });
  }
  return dx;
}

// PyTorch's avg_pool windows along one dim: [max(o*s - p, 0), min(o*s - p + k, in + p, in)), with
// the unclipped size (up to in + p) for count_include_pad.
void avg_windows_1d(std::size_t in, std::size_t out, std::int64_t k, std::int64_t s, std::int64_t p,
                    std::vector<PoolWindow>& w, std::vector<double>& padded_size) {
  for (std::size_t o = 0; o < out; ++o) {
    const std::int64_t start = static_cast<std::int64_t>(o) * s - p;
    const std::int64_t end = std::min<std::int64_t>(start + k, static_cast<std::int64_t>(in) + p);
    padded_size.push_back(static_cast<double>(end - start));
    w.push_back({sz(std::max<std::int64_t>(start, 0)), sz(std::min<std::int64_t>(end, static_cast<std::int64_t>(in)))});
  }
}

template <std::size_t D>
Tensor avg_pool_nd(const char* op, const Tensor& input, const AvgPoolOptions<D>& o) {
  check_window<D>(op, o.kernel_size(), o.stride(), o.padding(), ExpandingArray<D>(1));
  if (o.divisor_override()) check(*o.divisor_override() != 0, op, "divisor_override must be non-zero, got 0");
  const Planes pl = planes_of<D>(op, input);
  std::int64_t k[2] = {1, 1}, s[2] = {1, 1}, p[2] = {0, 0};
  for (std::size_t i = 0; i < D; ++i) {
    k[i + 2 - D] = o.kernel_size()[i];
    s[i + 2 - D] = o.stride()[i];
    p[i + 2 - D] = o.padding()[i];
  }
  const std::int64_t OH = pooled_size(static_cast<std::int64_t>(pl.H), k[0], p[0], s[0], 1, o.ceil_mode());
  const std::int64_t OW = pooled_size(static_cast<std::int64_t>(pl.W), k[1], p[1], s[1], 1, o.ceil_mode());
  check(OH >= 1 && OW >= 1, op, "input shape ", input.shape(), " is too small for kernel_size ",
        o.kernel_size().str(), " (padding ", o.padding().str(), "): the output would be ", OH, " x ", OW);
  auto win = std::make_shared<AvgWindows>();
  win->in_shape = input.shape();
  win->planes = pl.planes;
  win->H = pl.H; win->W = pl.W; win->OH = sz(OH); win->OW = sz(OW);
  win->out_shape = out_shape(pl, D, win->OH, win->OW);
  std::vector<double> rsize, csize;
  avg_windows_1d(pl.H, win->OH, k[0], s[0], p[0], win->rows, rsize);
  avg_windows_1d(pl.W, win->OW, k[1], s[1], p[1], win->cols, csize);
  for (std::size_t oh = 0; oh < win->OH; ++oh) {
    for (std::size_t ow = 0; ow < win->OW; ++ow) {
      const PoolWindow& r = win->rows[oh];
      const PoolWindow& c = win->cols[ow];
      double d = o.count_include_pad() ? rsize[oh] * csize[ow] : static_cast<double>((r.hi - r.lo) * (c.hi - c.lo));
      if (o.divisor_override()) d = static_cast<double>(*o.divisor_override());
      win->divisor.push_back(d);
    }
  }
  return avg_pool_apply(input, win, op);
}

template <std::size_t D>
Tensor adaptive_avg_pool_nd(const char* op, const Tensor& input, const AdaptiveAvgPoolOptions<D>& o) {
  for (std::size_t i = 0; i < D; ++i)
    check(o.output_size()[i] >= 1, op, "output_size must be >= 1, got ", o.output_size().str());
  const Planes pl = planes_of<D>(op, input);
  auto win = std::make_shared<AvgWindows>();
  win->in_shape = input.shape();
  win->planes = pl.planes;
  win->H = pl.H; win->W = pl.W;
  win->OH = D == 1 ? 1 : sz(o.output_size()[0]);
  win->OW = sz(o.output_size()[D - 1]);
  win->out_shape = out_shape(pl, D, win->OH, win->OW);
  // PyTorch's adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)).
  auto windows = [](std::size_t in, std::size_t out, std::vector<PoolWindow>& w) {
    for (std::size_t i = 0; i < out; ++i) w.push_back({i * in / out, ((i + 1) * in + out - 1) / out});
  };
  windows(pl.H, win->OH, win->rows);
  windows(pl.W, win->OW, win->cols);
  for (const PoolWindow& r : win->rows)
    for (const PoolWindow& c : win->cols) win->divisor.push_back(static_cast<double>((r.hi - r.lo) * (c.hi - c.lo)));
  return avg_pool_apply(input, win, op);
}

}  // namespace

namespace functional {

Tensor max_pool1d(const Tensor& input, const MaxPool1dFuncOptions& options) {
  return max_pool_nd<1>("max_pool1d", input, options).first;
}
Tensor max_pool2d(const Tensor& input, const MaxPool2dFuncOptions& options) {
  return max_pool_nd<2>("max_pool2d", input, options).first;
}
std::pair<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, const MaxPool1dFuncOptions& options) {
  return max_pool_nd<1>("max_pool1d", input, options);
}
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const MaxPool2dFuncOptions& options) {
  return max_pool_nd<2>("max_pool2d", input, options);
}
Tensor avg_pool1d(const Tensor& input, const AvgPool1dFuncOptions& options) {
  return avg_pool_nd<1>("avg_pool1d", input, options);
}
Tensor avg_pool2d(const Tensor& input, const AvgPool2dFuncOptions& options) {
  return avg_pool_nd<2>("avg_pool2d", input, options);
}
Tensor adaptive_avg_pool1d(const Tensor& input, const AdaptiveAvgPool1dFuncOptions& options) {
  return adaptive_avg_pool_nd<1>("adaptive_avg_pool1d", input, options);
}
Tensor adaptive_avg_pool2d(const Tensor& input, const AdaptiveAvgPool2dFuncOptions& options) {
  return adaptive_avg_pool_nd<2>("adaptive_avg_pool2d", input, options);
}

}  // namespace functional

// ---- modules: options checked at construction ------------------------------------------------------

template <std::size_t D>
MaxPoolNd<D>::MaxPoolNd(const MaxPoolOptions<D>& options) : options_(options) {
  check_window<D>(D == 1 ? "MaxPool1d" : "MaxPool2d", options.kernel_size(), options.stride(), options.padding(),
                  options.dilation());
}
template <std::size_t D>
Tensor MaxPoolNd<D>::forward(const Tensor& input) {
  return max_pool_nd<D>(D == 1 ? "MaxPool1d" : "MaxPool2d", input, options_).first;
}
template <std::size_t D>
std::pair<Tensor, Tensor> MaxPoolNd<D>::forward_with_indices(const Tensor& input) {
  return max_pool_nd<D>(D == 1 ? "MaxPool1d" : "MaxPool2d", input, options_);
}
template <std::size_t D>
std::string MaxPoolNd<D>::extra_repr() const {
  std::ostringstream os;
  os << "kernel_size=" << options_.kernel_size().str() << ", stride=" << options_.stride().str()
     << ", padding=" << options_.padding().str() << ", dilation=" << options_.dilation().str()
     << ", ceil_mode=" << (options_.ceil_mode() ? "True" : "False");
  return os.str();
}

template <std::size_t D>
AvgPoolNd<D>::AvgPoolNd(const AvgPoolOptions<D>& options) : options_(options) {
  const char* layer = D == 1 ? "AvgPool1d" : "AvgPool2d";
  check_window<D>(layer, options.kernel_size(), options.stride(), options.padding(), ExpandingArray<D>(1));
  if (options.divisor_override()) check(*options.divisor_override() != 0, layer, "divisor_override must be non-zero, got 0");
}
template <std::size_t D>
Tensor AvgPoolNd<D>::forward(const Tensor& input) {
  return avg_pool_nd<D>(D == 1 ? "AvgPool1d" : "AvgPool2d", input, options_);
}
template <std::size_t D>
std::string AvgPoolNd<D>::extra_repr() const {
  std::ostringstream os;
  os << "kernel_size=" << options_.kernel_size().str() << ", stride=" << options_.stride().str()
     << ", padding=" << options_.padding().str();
  return os.str();
}

template <std::size_t D>
AdaptiveAvgPoolNd<D>::AdaptiveAvgPoolNd(const AdaptiveAvgPoolOptions<D>& options) : options_(options) {
  for (std::size_t i = 0; i < D; ++i)
    check(options.output_size()[i] >= 1, D == 1 ? "AdaptiveAvgPool1d" : "AdaptiveAvgPool2d",
          "output_size must be >= 1, got ", options.output_size().str());
}
template <std::size_t D>
Tensor AdaptiveAvgPoolNd<D>::forward(const Tensor& input) {
  return adaptive_avg_pool_nd<D>(D == 1 ? "AdaptiveAvgPool1d" : "AdaptiveAvgPool2d", input, options_);
}
template <std::size_t D>
std::string AdaptiveAvgPoolNd<D>::extra_repr() const { return "output_size=" + options_.output_size().str(); }

template class MaxPoolNd<1>;
template class MaxPoolNd<2>;
template class AvgPoolNd<1>;
template class AvgPoolNd<2>;
template class AdaptiveAvgPoolNd<1>;
template class AdaptiveAvgPoolNd<2>;

}  // namespace sorix::nn
