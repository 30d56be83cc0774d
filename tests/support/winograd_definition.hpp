#pragma once
// Winograd F(2x2, 3x3)'s kernel transforms written out op by op as
// core/internal/sorix_core/kernels/winograd.hpp defines them: the references the kernel-table
// and layer tests compare the library's bits with.

#include <cstddef>
#include <vector>

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

/// The input transform's adjoint (the input gradient) of one plane: each tile's B z B^T, columns
/// first (e0 = z0, e1 = (z1 - z2) + z3, e2 = (z1 + z2) - z0, e3 = -z3), then the same along each
/// row, giving d[i][j]; tiles outside the TH x TW grid take z = +0. Padded element (r, c) =
/// share(r / 2 - 1, r % 2 + 2, c) + share(r / 2, r % 2, c), share(th, i, c) =
/// d(th, c / 2 - 1)[i][c % 2 + 2] + d(th, c / 2)[i][c % 2]; the plane is the padded one cropped by
/// ph rows and pw columns. z(t, xi): tile t = th * TW + tw's 16 values.
template <class Z>
std::vector<float> winograd_input_adjoint_plane(const Z& z, std::size_t TH, std::size_t TW, std::size_t H,
                                                std::size_t W, std::size_t ph, std::size_t pw) {
  const auto tile = [&](std::ptrdiff_t th, std::ptrdiff_t tw, float d[4][4]) {
    const bool in_grid = th >= 0 && tw >= 0 && th < std::ptrdiff_t(TH) && tw < std::ptrdiff_t(TW);
    float zt[16], e[4][4];
    for (std::size_t xi = 0; xi < 16; ++xi) zt[xi] = in_grid ? z(std::size_t(th) * TW + std::size_t(tw), xi) : 0.0f;
    for (int j = 0; j < 4; ++j) {
      e[0][j] = zt[j];
      e[1][j] = (zt[4 + j] - zt[8 + j]) + zt[12 + j];
      e[2][j] = (zt[4 + j] + zt[8 + j]) - zt[j];
      e[3][j] = -zt[12 + j];
    }
    for (int i = 0; i < 4; ++i) {
      d[i][0] = e[i][0];
      d[i][1] = (e[i][1] - e[i][2]) + e[i][3];
      d[i][2] = (e[i][1] + e[i][2]) - e[i][0];
      d[i][3] = -e[i][3];
    }
  };
  const auto share = [&](std::ptrdiff_t th, std::size_t i, std::size_t c) {
    float left[4][4], right[4][4];
    tile(th, std::ptrdiff_t(c / 2) - 1, left);
    tile(th, std::ptrdiff_t(c / 2), right);
    return left[i][c % 2 + 2] + right[i][c % 2];
  };
  std::vector<float> plane(H * W);
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t q = 0; q < W; ++q) {
      const std::size_t r = y + ph, c = q + pw;
      plane[y * W + q] = share(std::ptrdiff_t(r / 2) - 1, r % 2 + 2, c) + share(std::ptrdiff_t(r / 2), r % 2, c);
    }
  return plane;
}

}  // namespace sorix::testing
