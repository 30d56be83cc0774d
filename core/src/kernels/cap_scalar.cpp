// The "scalar" capability's kernels: the kernel templates instantiated for ScalarArch. This file is
// compiled with no extra flags: baseline x86-64 (SSE2) (CMakeLists.txt), and nothing but kernels lives here.
#include "core/src/kernels/table_impl.hpp"

namespace sorix::kernels {
namespace {
constexpr KernelTable kScalarTable = make_table<ScalarArch>("scalar");
}  // namespace

const KernelTable& scalar_table() { return kScalarTable; }

}  // namespace sorix::kernels
