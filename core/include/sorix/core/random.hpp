#pragma once
// Random tensors and in-place random fills, all on counter-based streams (see generator.hpp):
// bit-identical for any thread count. `generator` nullptr means the default generator.
#include <cstdint>

#include "sorix/core/generator.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix {

/// Uniform in [0, 1) (float32 unless a dtype is given; 24 random bits for float32, 53 for float64).
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr);
/// Standard normal (Box-Muller on the uniform stream).
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr);
/// Integers uniform in [low, high) (int64 unless a dtype is given).
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, TensorOptions options = Dtype::Int64,
               Generator* generator = nullptr);
/// A random permutation of 0..n-1 (int64).
Tensor randperm(std::int64_t n, TensorOptions options = Dtype::Int64, Generator* generator = nullptr);
/// 1 with probability p[i], else 0 (same shape and dtype as p; p in [0, 1]).
Tensor bernoulli(const Tensor& p, Generator* generator = nullptr);
/// 1 with probability p, else 0, in the shape and dtype of `like`.
Tensor bernoulli(const Tensor& like, double p, Generator* generator = nullptr);
Tensor rand_like(const Tensor& like, Generator* generator = nullptr);
Tensor randn_like(const Tensor& like, Generator* generator = nullptr);
Tensor randint_like(const Tensor& like, std::int64_t low, std::int64_t high, Generator* generator = nullptr);

/// In-place fills (bump the version; refused on leaves requiring grad while grad mode is on,
/// so initialisers run them under NoGradGuard).
Tensor& uniform_(Tensor& t, double from = 0.0, double to = 1.0, Generator* generator = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
Tensor& bernoulli_(Tensor& t, double p = 0.5, Generator* generator = nullptr);

}  // namespace sorix
