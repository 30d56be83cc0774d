// Writes the seed corpora of the fuzz targets with the library itself, so the seeds always match
// the current formats:  fuzz_seeds <dir>  ->  <dir>/checkpoint/*, <dir>/idx/*
// Each seed is a target's mode byte (fuzz_checkpoint.cpp, fuzz_idx.cpp) followed by a file that
// save / save_state / write_idx_u8 wrote.
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "fuzz_common.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void emit(const std::string& dir, const std::string& name, std::uint8_t mode, const Bytes& body) {
  Bytes seed{mode};
  seed.insert(seed.end(), body.begin(), body.end());
  if (!sorix::fuzz::write_file(dir + "/" + name, seed.data(), seed.size())) {
    throw std::runtime_error("fuzz_seeds: cannot write '" + dir + "/" + name + "'");
  }
}

// One saved object as checkpoint seeds: as written, and with the CRC-fixing mode bit.
template <class Save>
void checkpoint_seed(const std::string& dir, const std::string& name, Save&& save) {
  const std::string tmp = sorix::fuzz::scratch_path("seed.sorix");
  save(tmp);
  const Bytes body = read_all(tmp);
  std::remove(tmp.c_str());
  emit(dir, name, 0, body);
  emit(dir, name + "-fixcrc", sorix::fuzz::kFixCrc, body);
}

Bytes idx_bytes(const std::vector<std::uint8_t>& values, const sorix::Shape& shape, bool gz) {
  const std::string tmp = sorix::fuzz::scratch_path(gz ? "seed.idx.gz" : "seed.idx");
  sorix::data::write_idx_u8(tmp, values, shape);
  Bytes b = read_all(tmp);
  std::remove(tmp.c_str());
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sorix;
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds <output dir>\n";
    return 2;
  }
  const std::string root = argv[1], ckpt = root + "/checkpoint", idx = root + "/idx";
  ::mkdir(root.c_str(), 0755);
  ::mkdir(ckpt.c_str(), 0755);
  ::mkdir(idx.c_str(), 0755);
  try {
    fuzz::Targets t;
    // One training step, so that every optimizer has per-parameter state to save.
    auto loss = t.model(ones({4, 3})).sum();
    loss.backward();
    t.sgd.step();
    t.adam.step();
    t.adagrad.step();
    t.rmsprop.step();
    t.scheduler.step();
    for (const auto& batch : t.loader) (void)batch;
    checkpoint_seed(ckpt, "model", [&](const std::string& p) { save(t.model, p); });
    checkpoint_seed(ckpt, "sgd", [&](const std::string& p) { save(t.sgd, p); });
    checkpoint_seed(ckpt, "adam", [&](const std::string& p) { save(t.adam, p); });
    checkpoint_seed(ckpt, "adagrad", [&](const std::string& p) { save(t.adagrad, p); });
    checkpoint_seed(ckpt, "rmsprop", [&](const std::string& p) { save(t.rmsprop, p); });
    checkpoint_seed(ckpt, "scheduler", [&](const std::string& p) { save(t.scheduler, p); });
    checkpoint_seed(ckpt, "loader", [&](const std::string& p) { save(t.loader, p); });
    checkpoint_seed(ckpt, "generator", [&](const std::string& p) { save(t.generator, p); });
    checkpoint_seed(ckpt, "run", [&](const std::string& p) { save(t.checkpoint, p); });
    checkpoint_seed(ckpt, "shapes", [&](const std::string& p) {
      StateDict sd;
      sd.insert("scalar", scalar_tensor(2.5, Dtype::Float64));
      sd.insert("empty", zeros({0, 3}));
      sd.insert("index", arange(4.0).to(Dtype::Int64));
      sd.insert("cube", ones({2, 1, 2}, Dtype::Float64));
      save_state(sd, p);
    });
    checkpoint_seed(ckpt, "none", [&](const std::string& p) { save_state(StateDict{}, p); });

    // IDX: labels and images, plain and compressed; then an images + labels pair for
    // load_fashion_mnist (mode 1, split byte chosen so the split falls between the two files).
    const std::vector<std::uint8_t> labels{0, 3, 9};
    std::vector<std::uint8_t> pixels(3 * 4 * 4);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 37);
    for (bool gz : {false, true}) {
      const std::string suffix = gz ? "-gz" : "";
      const Bytes lab = idx_bytes(labels, {3}, gz), img = idx_bytes(pixels, {3, 4, 4}, gz);
      emit(idx, "labels" + suffix, 0, lab);
      emit(idx, "images" + suffix, 0, img);
      const std::size_t rest = img.size() + lab.size();
      for (unsigned b = 0; b < 256; ++b) {
        if (rest * b / 256 != img.size()) continue;
        Bytes pair{static_cast<std::uint8_t>(b)};
        pair.insert(pair.end(), img.begin(), img.end());
        pair.insert(pair.end(), lab.begin(), lab.end());
        emit(idx, "mnist" + suffix, 1, pair);
        break;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
