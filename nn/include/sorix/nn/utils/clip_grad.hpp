#pragma once
// Gradient clipping, as libtorch's torch::nn::utils (PyTorch 1.13's clip_grad_norm_ and
// clip_grad_value_). Parameters whose grad() is undefined are skipped; the gradients are changed
// in place (no graph is recorded).
//
// clip_grad_norm_: total = the norm_type-norm of all gradients together (as if concatenated);
// when max_norm / (total + 1e-6) < 1 every gradient is multiplied by that factor (a NaN total
// makes it NaN, and the gradients NaN, as PyTorch). Returns total (0 without gradients).
// Determinism: each gradient's part (sum of squares for norm 2, of |g| for 1, of |g|^p for other
// p, max |g| for inf) is one library reduction of fixed shape, in float64 (a float32 gradient is
// widened first, so its squares are exact); the parts combine in parameter order. Same bits at
// any thread count. Differs from PyTorch only by rounding (PyTorch works in the gradients' dtype
// and takes the norm of the per-parameter norms). norm_type other than 1, 2 and inf goes through
// pow (libm).
#include <initializer_list>
#include <limits>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix::nn::utils {

/// max_norm: >= 0 and not NaN; norm_type: > 0 (finite) or infinity, else std::invalid_argument
/// naming clip_grad_norm_ and the value. error_if_nonfinite: a NaN or infinite total throws
/// std::runtime_error (before any gradient is changed).
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
double clip_grad_norm_(std::initializer_list<Tensor> parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
double clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

/// Clamps every gradient element to [-clip_value, clip_value]; clip_value must be >= 0 and not
/// NaN (else std::invalid_argument). NaN gradient elements stay NaN.
void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value);
void clip_grad_value_(std::initializer_list<Tensor> parameters, double clip_value);
void clip_grad_value_(const Tensor& parameter, double clip_value);

}  // namespace sorix::nn::utils
