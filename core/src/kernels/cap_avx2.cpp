// The "avx2" capability's kernels: the kernel templates instantiated for Avx2Arch. This file is
// compiled with -mavx2 -mfma (CMakeLists.txt), and nothing but kernels lives here.
#include "sorix_core/kernels/table_impl.hpp"

namespace sorix::kernels {
namespace {
constexpr KernelTable kAvx2Table = make_table<Avx2Arch>("avx2");
}  // namespace

const KernelTable& avx2_table() { return kAvx2Table; }

}  // namespace sorix::kernels
