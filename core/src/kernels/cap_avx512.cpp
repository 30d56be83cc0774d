// The "avx512" capability's kernels: the kernel templates instantiated for Avx512Arch. This file is
// compiled with -mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma (CMakeLists.txt), and nothing but kernels lives here.
#include "sorix_core/kernels/table_impl.hpp"

namespace sorix::kernels {
namespace {
constexpr KernelTable kAvx512Table = make_table<Avx512Arch>("avx512");
}  // namespace

const KernelTable& avx512_table() { return kAvx512Table; }

}  // namespace sorix::kernels
