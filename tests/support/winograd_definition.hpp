#pragma once
// Winograd F(2x2, 3x3)'s kernel transforms written out op by op as
// core/internal/sorix_core/kernels/winograd.hpp defines them: the references the kernel-table
// and layer tests compare the library's bits with.

namespace sorix::testing {

/// u = G g G^T of one 3 x 3 kernel g (row-major), rows first, u[4 i + j].
inline void winograd_weight_transform(const float* g, float u[16]) {
  float k[3][3], rows[3][4];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) k[i][j] = g[i * 3 + j];
  for (int i = 0; i < 3; ++i) {
    rows[i][0] = k[i][0];
    rows[i][1] = ((k[i][0] + k[i][1]) + k[i][2]) * 0.5f;
    rows[i][2] = ((k[i][0] - k[i][1]) + k[i][2]) * 0.5f;
    rows[i][3] = k[i][2];
  }
  for (int j = 0; j < 4; ++j) {
    u[j] = rows[0][j];
    u[4 + j] = ((rows[0][j] + rows[1][j]) + rows[2][j]) * 0.5f;
    u[8 + j] = ((rows[0][j] - rows[1][j]) + rows[2][j]) * 0.5f;
    u[12 + j] = rows[2][j];
  }
}

/// dg = G^T du G of one kernel's 16 transformed gradient values du[4 i + j], columns first:
/// with x a column's 4 values, x0 + (x1 + x2) * 0.5, (x1 - x2) * 0.5, (x1 + x2) * 0.5 + x3;
/// then the same along each row. dg row-major.
inline void winograd_weight_grad_transform(const float du[16], float dg[9]) {
  auto gt = [](float x0, float x1, float x2, float x3, float* out) {
    out[0] = x0 + (x1 + x2) * 0.5f;
    out[1] = (x1 - x2) * 0.5f;
    out[2] = (x1 + x2) * 0.5f + x3;
  };
  float cols[3][4];
  for (int j = 0; j < 4; ++j) {
    float c[3];
    gt(du[j], du[4 + j], du[8 + j], du[12 + j], c);
    for (int i = 0; i < 3; ++i) cols[i][j] = c[i];
  }
  for (int i = 0; i < 3; ++i) gt(cols[i][0], cols[i][1], cols[i][2], cols[i][3], dg + 3 * i);
}

}  // namespace sorix::testing
