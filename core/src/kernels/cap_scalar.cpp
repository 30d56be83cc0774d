// The baseline capability's kernels ("scalar": baseline x86-64, SSE2; "neon" on arm64): the kernel
// templates instantiated for ScalarArch. This file is compiled with no extra flags
// (CMakeLists.txt), and nothing but kernels lives here.
#include "sorix_core/kernels/table_impl.hpp"

namespace sorix::kernels {
namespace {
constexpr KernelTable kScalarTable = make_table<ScalarArch>(kBaselineCapability);
}  // namespace

const KernelTable& scalar_table() { return kScalarTable; }

}  // namespace sorix::kernels
