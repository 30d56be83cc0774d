#pragma once
// Shared by the libFuzzer targets and the seed writer: the fuzzed objects (one small training
// setup whose every part has a state dict) and the file plumbing (the readers take paths).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "sorix/sorix.hpp"

namespace sorix::fuzz {

// The first byte of a checkpoint input chooses how it is used; the rest is the file.
//   bit 0: rewrite the trailing CRC so that a mutated body reaches the entry validation and the
//          state-dict consumers instead of stopping at the checksum.
inline constexpr std::uint8_t kFixCrc = 1;

/// A file of this process (libFuzzer runs one input at a time per process) under $TMPDIR or /tmp.
inline std::string scratch_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/sorix-fuzz-" + std::to_string(::getpid()) +
         "-" + name;
}

inline bool write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

/// Everything a checkpoint input is loaded into: a model with parameters and buffers, one
/// optimizer of each kind over it, a scheduler, a seeded DataLoader and a generator, tied
/// together by a Checkpoint. Built once per process (the loads leave it valid either way).
struct Targets {
  nn::Sequential model{nn::Linear(3, 2), nn::BatchNorm1d(2)};
  optim::SGD sgd{model.parameters(), optim::SGDOptions(0.1).momentum(0.9)};
  optim::Adam adam{model.parameters(), optim::AdamOptions(1e-2)};
  optim::Adagrad adagrad{model.parameters(), optim::AdagradOptions(1e-2)};
  optim::RMSprop rmsprop{model.parameters(), optim::RMSpropOptions(1e-2).momentum(0.5)};
  optim::StepLR scheduler{adam, 2, 0.5};
  data::DataLoader loader{data::TensorDataset(arange(10.0).reshape({5, 2}), arange(5.0)),
                          data::DataLoaderOptions(2).shuffle(true).seed(7)};
  Generator generator{3};
  Checkpoint checkpoint{model};

  Targets() { checkpoint.optimizer(adam).generator(generator).add("sched", scheduler).add("loader", loader); }
};

}  // namespace sorix::fuzz
