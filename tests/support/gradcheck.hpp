#pragma once
// The one finite-difference gradient check every differentiable op's test uses (float64).
//
//   auto r = sorix::testing::gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[1]; },
//                                      {sorix::testing::randn_f64({2, 3}, 1), sorix::testing::randn_f64({3}, 2)});
//   CHECK(r.ok); INFO(r.message);
//
// The scalar checked is L = sum(f(inputs) * W) for a fixed, non-uniform weight W of f's output
// shape, so every output element matters. Analytic gradients come from autograd::grad;
// numerical ones from central differences (eps 1e-6) of L, one input element at a time.
#include <cmath>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

namespace sorix::testing {

/// Deterministic float64 values in about [-2, 2] (no RNG dependency), requiring grad.
inline Tensor randn_f64(const Shape& shape, int seed, bool requires_grad = true) {
  Tensor t = zeros(shape, float64);
  double* p = t.data_ptr<double>();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    p[i] = 2.0 * std::sin(1.3 * static_cast<double>(i + 1) + 0.7 * seed) * std::cos(0.37 * static_cast<double>(i) * seed + 0.1);
  }
  if (requires_grad) t.requires_grad_(true);
  return t;
}

/// As randn_f64, but shifted away from 0 (for log, sqrt, division).
inline Tensor positive_f64(const Shape& shape, int seed, bool requires_grad = true) {
  Tensor t = zeros(shape, float64);
  double* p = t.data_ptr<double>();
  Tensor r = randn_f64(shape, seed, false);
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = 0.5 + std::abs(r.data_ptr<double>()[i]);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

inline GradcheckResult gradcheck(const TensorFn& f, std::vector<Tensor> inputs, double eps = 1e-6,
                                 double atol = 1e-6, double rtol = 1e-4) {
  GradcheckResult result;
  Tensor y = f(inputs);
  Tensor w = randn_f64(y.shape(), 97, false);
  if (y.dtype() != float64) w = w.to(y.dtype());
  // Grad mode stays on: f may itself differentiate (second-order checks call autograd::grad).
  auto loss_of = [&](const std::vector<Tensor>& in) {
    return (f(in).to(float64) * w.to(float64)).sum().item<double>();
  };
  std::vector<Tensor> wrt;
  std::vector<std::size_t> wrt_index;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].requires_grad()) {
      wrt.push_back(inputs[i]);
      wrt_index.push_back(i);
    }
  }
  Tensor loss = (y * w).sum();
  std::vector<Tensor> analytic = autograd::grad({loss}, wrt, {}, false, std::nullopt, true);
  std::ostringstream msg;
  for (std::size_t k = 0; k < wrt.size(); ++k) {
    Tensor x = inputs[wrt_index[k]];
    double* p = x.data_ptr<double>();
    for (std::int64_t e = 0; e < x.numel(); ++e) {
      const double saved = p[e];
      p[e] = saved + eps;
      const double up = loss_of(inputs);
      p[e] = saved - eps;
      const double down = loss_of(inputs);
      p[e] = saved;
      const double numeric = (up - down) / (2 * eps);
      const double a = analytic[k].defined() ? analytic[k].to(float64).data_ptr<double>()[e] : 0.0;
      const double err = std::abs(a - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= atol + rtol * std::abs(numeric))) {
        if (result.ok) {
          msg << "input " << wrt_index[k] << " element " << e << ": analytic " << a << " numeric " << numeric;
        }
        result.ok = false;
      }
    }
  }
  result.message = msg.str();
  return result;
}

/// Runs fn at each thread count and returns the results (callers compare them bit for bit).
template <class Fn>
auto at_thread_counts(const std::vector<int>& counts, Fn&& fn) {
  const int previous = parallel::get_num_threads();
  std::vector<decltype(fn())> out;
  for (int n : counts) {
    parallel::set_num_threads(n);
    out.push_back(fn());
  }
  parallel::set_num_threads(previous);
  return out;
}

/// True when both tensors have the same dtype, shape and bits.
inline bool bit_identical(const Tensor& a_in, const Tensor& b_in) {
  if (a_in.dtype() != b_in.dtype() || a_in.shape() != b_in.shape()) return false;
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();  // views compare by their elements
  const std::size_t bytes = static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype());
  const void* pa = nullptr;
  const void* pb = nullptr;
  switch (a.dtype()) {
    case Dtype::Float32: pa = a.data_ptr<float>(); pb = b.data_ptr<float>(); break;
    case Dtype::Float64: pa = a.data_ptr<double>(); pb = b.data_ptr<double>(); break;
    case Dtype::Int64: pa = a.data_ptr<std::int64_t>(); pb = b.data_ptr<std::int64_t>(); break;
    case Dtype::Bool: pa = a.data_ptr<bool>(); pb = b.data_ptr<bool>(); break;
    case Dtype::UInt8: pa = a.data_ptr<std::uint8_t>(); pb = b.data_ptr<std::uint8_t>(); break;
    case Dtype::Int32: pa = a.data_ptr<std::int32_t>(); pb = b.data_ptr<std::int32_t>(); break;
  }
  return bytes == 0 || std::memcmp(pa, pb, bytes) == 0;
}

}  // namespace sorix::testing
