// Winograd F(2x2, 3x3)'s weight transform and its adjoint (winograd.hpp): once per kernel per call, so plain code;
// -ffp-contract=off keeps every multiply and add separately rounded as written.
#include "sorix_core/kernels/winograd.hpp"

namespace sorix::kernels {
namespace {

// The four combinations of G applied to three values a, b, c (G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]).
void g_times(float a, float b, float c, float* out) {
  out[0] = a;
  out[1] = ((a + b) + c) * 0.5f;
  out[2] = ((a - b) + c) * 0.5f;
  out[3] = c;
}

// G^T applied to four values (the weight transform's adjoint along one axis).
void gt_times(float x0, float x1, float x2, float x3, float* out) {
  out[0] = x0 + (x1 + x2) * 0.5f;
  out[1] = (x1 - x2) * 0.5f;
  out[2] = (x1 + x2) * 0.5f + x3;
}

}  // namespace

void winograd_weight_grad_f32(const float* du, std::size_t ld, float* dg) {
  float cols[3][4];  // down each column first: cols[i][j] = (G^T du[., j])[i]
  for (int j = 0; j < 4; ++j) {
    float c[3];
    gt_times(du[j * ld], du[(4 + j) * ld], du[(8 + j) * ld], du[(12 + j) * ld], c);
    for (int i = 0; i < 3; ++i) cols[i][j] = c[i];
  }
  for (int i = 0; i < 3; ++i) gt_times(cols[i][0], cols[i][1], cols[i][2], cols[i][3], dg + i * 3);
}

void winograd_weight_f32(const float* g, float* u, std::size_t ld) {
  float rows[3][4];  // each kernel row through G: rows first
  for (int i = 0; i < 3; ++i) g_times(g[i * 3], g[i * 3 + 1], g[i * 3 + 2], rows[i]);
  for (int j = 0; j < 4; ++j) {  // then down each column
    float col[4];
    g_times(rows[0][j], rows[1][j], rows[2][j], col);
    for (int i = 0; i < 4; ++i) u[(4 * i + j) * ld] = col[i];
  }
}

}  // namespace sorix::kernels
