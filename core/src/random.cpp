// Random tensors on counter-based Philox streams (core/philox.hpp). Each op reserves its
// counters on the calling thread, then fixed chunks (parallel::kChunkSize elements, never derived
// from the thread count) fill their own range of the stream: bit-identical for any thread count.
#include "sorix/core/random.hpp"

#include <cmath>
#include <limits>
#include <numeric>

#include "sorix_core/internal.hpp"
#include "sorix/core/grad_mode.hpp"
#include "sorix/core/philox.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix {

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace {

Generator& pick(Generator* g) { return g != nullptr ? *g : default_generator(); }

void check_float(Dtype d, const char* op) {
  check(is_floating(d), op, "expected a floating dtype (float32 or float64), got ", dtype_name(d));
}

// Runs body(first, n) over the fixed chunks of [0, n).
template <class Body>
void for_chunks(std::size_t n, Body&& body) {
  parallel::parallel_for(n, parallel::kChunkSize, [&](std::size_t b, std::size_t e) { body(b, e - b); });
}

// Reserves the counters a float32 or float64 t needs from gen, then fills t's fixed chunks with
// f32(key, base, first, out, m) or f64(...) writing elements [first, first + m) to out.
template <class F32, class F64>
void fill_floating(Tensor& t, Generator& gen, F32&& f32, F64&& f64) {
  const std::size_t n = static_cast<std::size_t>(t.numel());
  const std::uint64_t key = gen.seed();
  if (t.dtype() == Dtype::Float32) {
    const std::uint64_t base = gen.reserve(rng::counters_for_f32(n));
    float* p = detail::flat<float>(t);
    for_chunks(n, [&](std::size_t first, std::size_t m) { f32(key, base, first, p + first, m); });
  } else {
    const std::uint64_t base = gen.reserve(rng::counters_for_f64(n));
    double* p = detail::flat<double>(t);
    for_chunks(n, [&](std::size_t first, std::size_t m) { f64(key, base, first, p + first, m); });
  }
}

void fill_uniform(Tensor& t, double low, double high, Generator& gen, const char* op) {
  check(std::isfinite(low) && std::isfinite(high) && low <= high, op, "expected finite from <= to, got from=", low,
        " to=", high);
  // The kernels compute low + u * (high - low) in the tensor's dtype: the width must be finite
  // there too, or every element becomes inf/NaN (e.g. from=-1e39, to=1e39 for float32).
  const bool width_ok = t.dtype() == Dtype::Float32
                            ? std::isfinite(static_cast<float>(high) - static_cast<float>(low))
                            : std::isfinite(high - low);
  check(width_ok, op, "to - from must be finite in ", dtype_name(t.dtype()), ", got from=", low, " to=", high);
  fill_floating(
      t, gen,
      [&](std::uint64_t key, std::uint64_t base, std::size_t first, float* out, std::size_t m) {
        rng::uniform_f32_range(key, base, first, out, m, static_cast<float>(low), static_cast<float>(high));
      },
      [&](std::uint64_t key, std::uint64_t base, std::size_t first, double* out, std::size_t m) {
        rng::uniform_f64_range(key, base, first, out, m, low, high);
      });
}

void fill_normal(Tensor& t, double mean, double std, Generator& gen, const char* op) {
  check(std::isfinite(mean) && std::isfinite(std) && std >= 0, op, "expected finite mean and std >= 0, got mean=", mean,
        " std=", std);
  fill_floating(
      t, gen,
      [&](std::uint64_t key, std::uint64_t base, std::size_t first, float* out, std::size_t m) {
        rng::normal_f32_range(key, base, first, out, m, static_cast<float>(mean), static_cast<float>(std));
      },
      [&](std::uint64_t key, std::uint64_t base, std::size_t first, double* out, std::size_t m) {
        rng::normal_f64_range(key, base, first, out, m, mean, std);
      });
}

void fill_bernoulli(Tensor& t, double prob, Generator& gen, const char* op) {
  check(prob >= 0.0 && prob <= 1.0, op, "probability must be in [0, 1], got ", prob);
  const std::size_t n = static_cast<std::size_t>(t.numel());
  const std::uint64_t key = gen.seed();
  const std::uint64_t base = gen.reserve(rng::counters_for_u32(n));
  if (t.dtype() == Dtype::Float32) {
    float* p = detail::flat<float>(t);
    for_chunks(n, [&](std::size_t first, std::size_t m) { rng::bernoulli_f32_range(key, base, first, p + first, m, prob); });
  } else if (t.dtype() == Dtype::Float64) {
    double* p = detail::flat<double>(t);
    for_chunks(n, [&](std::size_t first, std::size_t m) { rng::bernoulli_f64_range(key, base, first, p + first, m, prob); });
  } else {
    std::int64_t* p = detail::flat<std::int64_t>(t);
    const std::uint64_t threshold = rng::dropout_threshold(prob);
    for_chunks(n, [&](std::size_t first, std::size_t m) {
      std::vector<std::uint32_t> words(m);
      rng::fill_u32_range(key, base, first, words.data(), m);
      for (std::size_t i = 0; i < m; ++i) p[first + i] = words[i] < threshold ? 1 : 0;
    });
  }
}

// 64-bit random values: element j uses words 2j (low) and 2j+1 (high) of the stream.
void fill_u64(std::uint64_t key, std::uint64_t base, std::size_t first, std::uint64_t* out, std::size_t m) {
  std::vector<std::uint32_t> words(2 * m);
  rng::fill_u32_range(key, base, 2 * first, words.data(), 2 * m);
  for (std::size_t i = 0; i < m; ++i) out[i] = (static_cast<std::uint64_t>(words[2 * i + 1]) << 32) | words[2 * i];
}

// Lemire's multiply-shift: an integer in [0, range) from 64 random bits (bias < range / 2^64).
inline std::uint64_t below(std::uint64_t bits, std::uint64_t range) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(bits) * range) >> 64);
}

}  // namespace

Tensor rand(const Shape& shape, TensorOptions options, Generator* generator) {
  check_float(options.dtype_, "rand");
  Tensor t = empty(shape, options.dtype_);
  fill_uniform(t, 0.0, 1.0, pick(generator), "rand");
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* generator) {
  check_float(options.dtype_, "randn");
  Tensor t = empty(shape, options.dtype_);
  fill_normal(t, 0.0, 1.0, pick(generator), "randn");
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, TensorOptions options, Generator* generator) {
  check(low < high, "randint", "expected low < high, got low=", low, " high=", high);
  Tensor t = empty(shape, Dtype::Int64);
  Generator& gen = pick(generator);
  const std::size_t n = static_cast<std::size_t>(t.numel());
  const std::uint64_t key = gen.seed();
  const std::uint64_t base = gen.reserve(rng::counters_for_f64(n));
  const std::uint64_t range = static_cast<std::uint64_t>(high) - static_cast<std::uint64_t>(low);
  std::int64_t* p = detail::flat<std::int64_t>(t);
  for_chunks(n, [&](std::size_t first, std::size_t m) {
    std::vector<std::uint64_t> bits(m);
    fill_u64(key, base, first, bits.data(), m);
    // low + offset in unsigned (two's-complement wrap) arithmetic: the offset can exceed INT64_MAX
    // when the range is wider than 2^63, and a signed add would overflow (undefined behaviour).
    for (std::size_t i = 0; i < m; ++i) {
      p[first + i] = static_cast<std::int64_t>(static_cast<std::uint64_t>(low) + below(bits[i], range));
    }
  });
  return options.dtype_ == Dtype::Int64 ? t : t.to(options.dtype_);
}

Tensor randperm(std::int64_t n, TensorOptions options, Generator* generator) {
  check(n >= 0, "randperm", "n must be non-negative, got ", n);
  detail::check_numel({n}, "randperm");  // before the random words are reserved
  Generator& gen = pick(generator);
  const std::size_t count = static_cast<std::size_t>(n);
  const std::uint64_t key = gen.seed();
  const std::uint64_t base = gen.reserve(rng::counters_for_f64(count));
  // The random words are generated in parallel chunks; the Fisher-Yates swaps that consume them
  // run in a fixed serial order, so the permutation is the same for any thread count.
  std::vector<std::uint64_t> bits(count);
  for_chunks(count, [&](std::size_t first, std::size_t m) { fill_u64(key, base, first, bits.data() + first, m); });
  Tensor t = empty({n}, Dtype::Int64);
  std::int64_t* p = detail::flat<std::int64_t>(t);
  std::iota(p, p + count, std::int64_t{0});
  for (std::size_t i = count; i-- > 1;) std::swap(p[i], p[below(bits[i], i + 1)]);
  return options.dtype_ == Dtype::Int64 ? t : t.to(options.dtype_);
}

Tensor bernoulli(const Tensor& prob, Generator* generator) {
  detail::check_defined(prob, "bernoulli");
  check_float(prob.dtype(), "bernoulli");
  Generator& gen = pick(generator);
  const std::size_t n = static_cast<std::size_t>(prob.numel());
  const Tensor prob_flat = detail::contiguous_copy_if_needed(prob);
  Tensor out = empty(prob.shape(), prob.dtype());
  detail::visit_floating(prob.dtype(), "bernoulli", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pp = detail::flat<T>(prob_flat);
    for (std::size_t i = 0; i < n; ++i) {
      check(pp[i] >= T(0) && pp[i] <= T(1), "bernoulli", "probabilities must be in [0, 1], got ", pp[i], " at index ", i);
    }
    const std::uint64_t key = gen.seed();
    const std::uint64_t base = gen.reserve(rng::counters_for_u32(n));
    T* po = detail::flat<T>(out);
    for_chunks(n, [&](std::size_t first, std::size_t m) {
      std::vector<std::uint32_t> words(m);
      rng::fill_u32_range(key, base, first, words.data(), m);
      for (std::size_t i = 0; i < m; ++i) {
        po[first + i] = words[i] < rng::dropout_threshold(static_cast<double>(pp[first + i])) ? T(1) : T(0);
      }
    });
  });
  return out;
}

Tensor bernoulli(const Tensor& like, double p, Generator* generator) {
  detail::check_defined(like, "bernoulli");
  Tensor t = empty(like.shape(), like.dtype());
  fill_bernoulli(t, p, pick(generator), "bernoulli");
  return t;
}

Tensor rand_like(const Tensor& like, Generator* generator) { return rand(like.shape(), like.dtype(), generator); }
Tensor randn_like(const Tensor& like, Generator* generator) { return randn(like.shape(), like.dtype(), generator); }
Tensor randint_like(const Tensor& like, std::int64_t low, std::int64_t high, Generator* generator) {
  return randint(low, high, like.shape(), like.dtype(), generator);
}

// Runs fill on t's memory, or, for a non-contiguous view, on a contiguous scratch tensor copied
// in afterwards: the values follow t's row-major element order either way, so a view draws the
// same numbers as a contiguous tensor of its shape.
template <class Fill>
Tensor& fill_inplace(Tensor& t, Fill&& fill) {
  if (t.is_contiguous()) {
    fill(t);
  } else {
    Tensor scratch = empty(t.shape(), t.dtype());
    fill(scratch);
    detail::copy_into(scratch, t);
  }
  ++t.impl()->storage->version;
  const auto& base = t.impl()->view_base;
  if (autograd::grad_enabled() && (t.requires_grad() || (base && base->requires_grad))) {
    autograd::record_inplace(t, t.detach());  // new values without history: no gradient to the old
  }
  return t;
}

Tensor& uniform_(Tensor& t, double from, double to, Generator* generator) {
  detail::check_inplace(t, "uniform_");
  check_float(t.dtype(), "uniform_");
  return fill_inplace(t, [&](Tensor& d) { fill_uniform(d, from, to, pick(generator), "uniform_"); });
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* generator) {
  detail::check_inplace(t, "normal_");
  check_float(t.dtype(), "normal_");
  return fill_inplace(t, [&](Tensor& d) { fill_normal(d, mean, std, pick(generator), "normal_"); });
}

Tensor& bernoulli_(Tensor& t, double p, Generator* generator) {
  detail::check_inplace(t, "bernoulli_");
  return fill_inplace(t, [&](Tensor& d) { fill_bernoulli(d, p, pick(generator), "bernoulli_"); });
}

Tensor& Tensor::uniform_(double from, double to, Generator* g) { return sorix::uniform_(*this, from, to, g); }
Tensor& Tensor::normal_(double mean, double std, Generator* g) { return sorix::normal_(*this, mean, std, g); }
Tensor& Tensor::bernoulli_(double p, Generator* g) { return sorix::bernoulli_(*this, p, g); }

}  // namespace sorix
