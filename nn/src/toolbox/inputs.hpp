#pragma once
// Input checks shared by the toolbox (metrics, preprocessing, model selection, clustering): one
// place that names the function, the argument and what was expected.
#include <cstdint>
#include <string>
#include <vector>

#include "sorix/core/error.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::toolbox_detail {

/// Throws std::invalid_argument unless t is defined.
void check_defined(const Tensor& t, const char* fn, const char* what);
/// Throws unless t has no NaN or infinity (floating dtypes; int64 always passes), naming the
/// first bad element's flat position and value.
void check_finite(const Tensor& t, const char* fn, const char* what);
/// t as a contiguous float64 tensor (float32/float64/int64 accepted); checks defined and finite.
Tensor to_float64(const Tensor& t, const char* fn, const char* what);
/// The values of a 1-D int64 tensor (std::invalid_argument for another dtype or rank).
std::vector<std::int64_t> int64_values(const Tensor& t, const char* fn, const char* what);
/// The values of a float64 tensor, row-major.
std::vector<double> float64_values(const Tensor& t);
/// Throws unless t is 2-D with at least one row and one column; floating or int64.
void check_matrix(const Tensor& t, const char* fn, const char* what);
/// "[a, b, c]"
std::string list_string(const std::vector<std::int64_t>& v);

}  // namespace sorix::toolbox_detail
