// libFuzzer target: the checkpoint reader (load_state) and everything that consumes what it
// returns: Module, Optimizer (every kind), LRScheduler, DataLoader, Generator and Checkpoint
// load_state_dict. Input: one mode byte (fuzz_common.hpp), then the file's bytes.
// Every malformed input must end in a std::exception; a crash, leak, hang or allocation beyond
// libFuzzer's limits is a bug.
#include <zlib.h>

#include <exception>
#include <vector>

#include "fuzz_common.hpp"

namespace {

template <class F>
void consume(F&& f) {
  try {
    f();
  } catch (const std::exception&) {
    // A clear, typed error is the expected outcome for most inputs.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sorix;
  static fuzz::Targets targets;
  static const std::string path = fuzz::scratch_path("checkpoint.sorix");
  if (size < 1) return 0;
  std::vector<std::uint8_t> file(data + 1, data + size);
  if ((data[0] & fuzz::kFixCrc) != 0 && file.size() >= 4) {
    const auto crc = static_cast<std::uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), file.data(), file.size() - 4));
    for (int i = 0; i < 4; ++i) file[file.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  if (!fuzz::write_file(path, file.data(), file.size())) return 0;
  StateDict state;
  try {
    state = load_state(path);
  } catch (const std::exception&) {
    return 0;
  }
  // Whatever loaded is handed to every consumer: each must accept it or refuse it cleanly.
  for (const auto& [name, t] : state) consume([&, &t = t] { (void)t.sum().item<double>(); });
  consume([&] { targets.model.load_state_dict(state); });
  consume([&] { targets.model.load_state_dict(state, /*strict=*/false); });
  consume([&] { targets.sgd.load_state_dict(state); });
  consume([&] { targets.adam.load_state_dict(state); });
  consume([&] { targets.adagrad.load_state_dict(state); });
  consume([&] { targets.rmsprop.load_state_dict(state); });
  consume([&] { targets.scheduler.load_state_dict(state); });
  consume([&] { targets.loader.load_state_dict(state); });
  consume([&] { load_generator_state_dict(targets.generator, state); });
  consume([&] { targets.checkpoint.load_state_dict(state); });
  // A state that loaded must leave every part usable.
  consume([&] {
    for (const auto& batch : targets.loader) (void)batch.data.numel();
    auto loss = targets.model(ones({4, 3})).sum();
    targets.adam.zero_grad();
    loss.backward();
    targets.adam.step();
    targets.scheduler.step();
  });
  return 0;
}
