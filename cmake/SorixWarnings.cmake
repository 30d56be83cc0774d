# Our code builds clean with -Wall -Wextra. (g++ 12's false warnings inside its AVX-512 intrinsic
# headers are silenced for those headers only, in core/internal/sorix_core/kernels/simd.hpp.)
function(sorix_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
endfunction()
