#pragma once
// Winograd's F(2x2, 3x3) convolution: a 3 x 3 kernel of stride and dilation 1 as 16 products of
// transformed tiles instead of 9 taps per output (2.25x fewer multiply-adds), for float32.
//
// The arithmetic, fixed here so that every CPU and thread count gives the same bits:
//   * tiles: output rows 2 th, 2 th + 1 and columns 2 tw, 2 tw + 1 (th < TH = ceil(OH / 2),
//     tw < TW = ceil(OW / 2)) read the 4 x 4 input patch d[i][j] = x[2 th - ph + i][2 tw - pw + j]
//     (0 outside the image); a tile past the output's last row or column computes values nobody
//     stores.
//   * input transform V = B^T d B, rows first: w[i][0] = d[i][0] - d[i][2], w[i][1] = d[i][1] +
//     d[i][2], w[i][2] = d[i][2] - d[i][1], w[i][3] = d[i][1] - d[i][3]; then the same four
//     combinations down each column j of w give V[0..3][j]. Additions only: exact op by op.
//   * weight transform U = G g G^T (winograd_weight_f32), rows first: u[i][0] = g[i][0],
//     u[i][1] = ((g[i][0] + g[i][1]) + g[i][2]) * 0.5, u[i][2] = ((g[i][0] - g[i][1]) + g[i][2]) *
//     0.5, u[i][3] = g[i][2]; then the same down each column.
//   * the products: M[xi][o][t] = the fma chain over input channels c in order of U[xi][o][c] *
//     V[xi][c][t] from +0 (the library's product kernel, gemm.hpp: per element, whatever the
//     tiles), xi = 4 i + j the 16 transformed positions, t = th * TW + tw.
//   * output transform Y = A^T M A, rows first: z[i][0] = (m[i][0] + m[i][1]) + m[i][2],
//     z[i][1] = (m[i][1] - m[i][2]) - m[i][3]; then the same down each column of z; then + b.
//   * the weight gradient is this arithmetic's own: each tile's output gradient g (2 x 2) through
//     the output transform's adjoint, M' = A g A^T (rows first: g0, g0 + g1, g0 - g1, -g1; then
//     down each column), the products dU[xi][o][c] = the chain over tiles t (images in order,
//     the batch tree over chunks of images) of M'[xi][o][t] * V[xi][c][t], and dg = G^T dU G
//     (winograd_weight_grad_f32); the bias gradient is the add chain of the tiles' sums
//     M'[5] = (g00 + g01) + (g10 + g11), in the same order.
//   * the input gradient is the adjoint too, from the same M': the products Z[xi][c][t] = the fma
//     chain over output channels o in order of U[xi][o][c] * M'[xi][o][t] from +0, then each
//     tile's B Z B^T (winograd_input_adjoint_f32), down each column first (e0 = z0,
//     e1 = (z1 - z2) + z3, e2 = (z1 + z2) - z0, e3 = -z3), then the same along each row, giving
//     d[i][j], the tile's share of padded element (2 th + i, 2 tw + j). Tiles overlap by two rows
//     and columns: padded row 2 th + i (i < 2) of a row of tiles th is, column 2 tw + j (j < 2),
//     h_th[i] = d(th, tw - 1)[i][j + 2] + d(th, tw)[i][j]; the padded element (2 th + i, c) is
//     h_(th - 1)[i + 2] + h_th[i] (rows past the tile grid, th = -1 and TH, and tiles
//     past a row, tw = -1 and TW, take Z = +0 through the same steps); dx is the padded plane
//     cropped by p. Sharing M' with the weight gradient, it needs no transform of its own for
//     the output gradient.
// Every step is lane-wise (one tile per vector lane), so the vector width never changes a bit.
// The result differs from the direct (im2col) chains by rounding only: |error| within a few
// float ulps of the sum of |products| for the small numbers these transforms multiply by (0.5, 1).
//
// Layouts: a transformed plane is 16 rows (one per xi) of TH * TW tiles, row xi at v + xi * ld;
// the plane kernels may touch up to kWinogradSlack - 1 values past a row's TH * TW (a row's last
// register, up to 16 lanes; ld must leave room for them: winograd_row_ld).
#include <cstddef>

namespace sorix::kernels {

/// Values past a transformed row's TH * TW tiles that the plane kernels may write or read.
inline constexpr std::size_t kWinogradSlack = 16;

/// A transformed row's stride for T = TH * TW tiles: room for the slack, rounded up to whole
/// 64-byte lines (49 tiles, the CNN's 14 x 14 planes: 64 floats, a fifth less cache than 80).
inline constexpr std::size_t winograd_row_ld(std::size_t tiles) { return (tiles + kWinogradSlack - 1 + 15) / 16 * 16; }

/// The row length of a plane split into even and odd columns for TW tiles per row: the TW + 1
/// values a row of tiles reads, rounded up past the whole registers that write them.
inline constexpr std::size_t winograd_split_width(std::size_t TW) { return TW + 2 * kWinogradSlack; }
/// Floats of scratch the input transform (or the output transform's adjoint) of a plane with
/// TH x TW tiles needs: its zero-padded plane split into even and odd columns.
inline constexpr std::size_t winograd_input_scratch(std::size_t TH, std::size_t TW) {
  return 2 * (2 * TH + 2) * winograd_split_width(TW);
}

/// Floats of scratch the input transform's adjoint of a plane with TW tiles a row needs: six
/// padded rows of whole registers.
inline constexpr std::size_t winograd_input_adjoint_scratch(std::size_t TW) { return 12 * (TW + kWinogradSlack); }

/// U (16 values, u[xi * ld]) = G g G^T of one 3 x 3 kernel g (row-major, 9 values). Exact op by op
/// as written in this file's header (baseline code: the same bits on every CPU).
void winograd_weight_f32(const float* g, float* u, std::size_t ld);

/// The weight transform's adjoint: dg (9 values, row-major) = G^T du G for the 16 values du[xi * ld]
/// of one kernel's gradient in transformed form, columns first (the reverse of the transform's
/// order): with x the 4 values of a column, (x0 + (x1 + x2) * 0.5, (x1 - x2) * 0.5,
/// (x1 + x2) * 0.5 + x3); then the same along each row. Exact op by op (baseline code).
void winograd_weight_grad_f32(const float* du, std::size_t ld, float* dg);

}  // namespace sorix::kernels
