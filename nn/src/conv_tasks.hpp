#pragma once
// Internal (not installed): how the convolutions cut their work into parallel tasks. Each choice
// sets only the grain: every output element and every gradient row is its own chain, made the
// same way in whatever task, so no bit depends on it (or on the thread count it reads).
#include <algorithm>
#include <cstddef>

#include "sorix/parallel/parallel.hpp"

namespace sorix::nn::detail {

/// Whether a batch of `images` gives every thread two tasks of one image each (the paths that
/// work image by image, in the thread's scratch, take it from there).
inline bool images_feed_threads(std::size_t images) {
  return images >= 2 * static_cast<std::size_t>(parallel::get_num_threads());
}

/// The channels each task takes when a weight gradient's tasks are (chunk of the batch tree,
/// group, block of `channels`): as few blocks per group as still give every thread
/// `tasks_per_thread` tasks (two by default, for balance), whole groups where the chunks alone
/// do that. Every block repeats its chunk's work on the other side of the product (the columns,
/// or Winograd's input transforms), hence as few as will do.
inline std::size_t channels_per_task(std::size_t channels, std::size_t chunks, std::size_t groups,
                                     std::size_t tasks_per_thread = 2) {
  const std::size_t threads = static_cast<std::size_t>(parallel::get_num_threads());
  const std::size_t wanted =
      (tasks_per_thread * threads + chunks * groups - 1) / (chunks * groups);  // blocks per group
  return std::max<std::size_t>(1, (channels + wanted - 1) / wanted);
}

}  // namespace sorix::nn::detail
