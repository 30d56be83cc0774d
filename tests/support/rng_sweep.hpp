#pragma once
// The thread counts and sizes the Dropout issue asks random ops and masks to be checked at.
#include <cstdint>
#include <vector>

#include <sorix/sorix.hpp>

namespace sorix::testing {

inline constexpr std::size_t kRngChunk = parallel::kChunkSize;
inline const std::vector<int> kRngThreads = {1, 2, 3, 4, 7, 16, 64};
// Edge sizes: empty, tiny, SIMD tails, around 4096, around one chunk, and a big odd size that
// runs in parallel (> kInlineGrain) with a ragged last chunk.
inline const std::vector<std::int64_t> kRngSizes = {0,    1,    3,  4, 5, 4095, 4097, kRngChunk - 1, kRngChunk + 1,
                                                    1000003};

}  // namespace sorix::testing
