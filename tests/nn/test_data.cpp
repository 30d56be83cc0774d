// Datasets, DataLoader (coverage, batching, shuffling determinism) and the IDX reader.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sorix/sorix.hpp>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/temp_files.hpp"

namespace fs = std::filesystem;
using sorix::Dtype;
using sorix::Shape;
using sorix::Tensor;
using sorix::data::Batch;
using sorix::data::DataLoader;
using sorix::data::DataLoaderOptions;
using sorix::data::TensorDataset;
using sorix::testing::bit_identical;
using sorix::testing::read_bytes;
using sorix::testing::TempDir;
using sorix::testing::write_bytes;

namespace {

// An IDX header for type `type` and the given dims, built by hand (big-endian dims).
std::vector<unsigned char> idx_header(unsigned char type, const std::vector<std::uint32_t>& dims) {
  std::vector<unsigned char> b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (auto d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((d >> s) & 0xFF));
  }
  return b;
}

std::string idx_error(const std::string& path) {
  try {
    sorix::data::read_idx_u8(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

// A dataset whose row i of data is (i, i + 0.5, ..., ) and whose target is i.
TensorDataset counting_dataset(std::int64_t n, std::int64_t width) {
  Tensor x = sorix::empty({n, width}, Dtype::Float32);
  Tensor y = sorix::empty({n}, Dtype::Int64);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < width; ++j) x.data_ptr<float>()[i * width + j] = static_cast<float>(i) + 0.5f * static_cast<float>(j);
    y.data_ptr<std::int64_t>()[i] = i;
  }
  return TensorDataset(x, y);
}

// The order of examples an epoch visits (the targets of a counting dataset, batch after batch).
std::vector<std::int64_t> epoch_order(DataLoader& loader) {
  std::vector<std::int64_t> order;
  for (const Batch& b : loader) {
    const std::int64_t* p = b.target.data_ptr<std::int64_t>();
    order.insert(order.end(), p, p + b.target.numel());
  }
  return order;
}

// The same rows of a dataset as a generic Dataset (exercises the get()-and-stack path).
struct GenericView : sorix::data::Dataset {
  const TensorDataset& inner;
  explicit GenericView(const TensorDataset& d) : inner(d) {}
  std::int64_t size() const override { return inner.size(); }
  sorix::data::Example get(std::int64_t i) const override { return inner.get(i); }
};

}  // namespace

TEST_CASE("IDX files round trip plain and gzip-compressed", "[data]") {
  TempDir dir("sorix_data_");
  std::vector<std::uint8_t> values(5 * 3 * 4);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
  const Shape shape{5, 3, 4};
  for (const std::string name : {"images-idx3-ubyte", "images-idx3-ubyte.gz"}) {
    const std::string p = dir.file(name);
    sorix::data::write_idx_u8(p, values, shape);
    const auto bytes = read_bytes(p);
    if (name.ends_with(".gz")) {
      REQUIRE(bytes.size() > 2);
      CHECK(bytes[0] == 0x1f);  // really gzip
      CHECK(bytes[1] == 0x8b);
    } else {
      auto expect = idx_header(0x08, {5, 3, 4});
      expect.insert(expect.end(), values.begin(), values.end());
      CHECK(bytes == expect);  // exactly the documented layout
    }
    auto [got, got_shape] = sorix::data::read_idx_u8(p);
    CHECK(got == values);
    CHECK(got_shape == shape);
    // Images keep the file's uint8 (as torchvision's read_image_file), byte for byte.
    Tensor t = sorix::data::read_idx(p);
    REQUIRE(t.dtype() == Dtype::UInt8);
    REQUIRE(t.shape() == shape);
    CHECK(std::vector<std::uint8_t>(t.data_ptr<std::uint8_t>(), t.data_ptr<std::uint8_t>() + values.size()) == values);
  }
  // 1-D files (labels) read as int64; empty files are fine.
  const std::string labels = dir.file("labels.gz");
  sorix::data::write_idx_u8(labels, {3, 1, 4, 1, 5}, {5});
  Tensor l = sorix::data::read_idx(labels);
  REQUIRE(l.dtype() == Dtype::Int64);
  CHECK(std::vector<std::int64_t>(l.data_ptr<std::int64_t>(), l.data_ptr<std::int64_t>() + 5) ==
        std::vector<std::int64_t>{3, 1, 4, 1, 5});
  sorix::data::write_idx_u8(dir.file("none"), {}, {0, 28, 28});
  CHECK(sorix::data::read_idx(dir.file("none")).shape() == Shape{0, 28, 28});
  CHECK(sorix::data::read_idx(dir.file("none")).dtype() == Dtype::UInt8);
  sorix::data::write_idx_u8(dir.file("2d"), {0, 255, 128, 7}, {2, 2});  // any file of 2+ dims is uint8
  const Tensor two = sorix::data::read_idx(dir.file("2d"));
  CHECK(two.dtype() == Dtype::UInt8);
  CHECK(two.sum().item<std::int64_t>() == 390);  // no wrap: uint8 sums to int64 (as PyTorch)
  CHECK_THROWS_AS(sorix::data::write_idx_u8(dir.file("bad"), {1, 2}, {3}), std::invalid_argument);
}

TEST_CASE("malformed IDX files are rejected with the path and the problem", "[data]") {
  TempDir dir("sorix_data_");
  const std::string p = dir.file("f.idx");
  auto expect_error = [&](const std::vector<unsigned char>& bytes, const std::string& what) {
    write_bytes(p, bytes);
    const std::string msg = idx_error(p);
    INFO(msg);
    CHECK(msg.find("'" + p + "'") != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  };
  expect_error({}, "file too short");
  expect_error({0, 0}, "file too short");
  expect_error({1, 0, 8, 1, 0, 0, 0, 0}, "bad magic 0x01");
  expect_error(idx_header(0x0D, {2}), "unsupported type code 0x0D");
  expect_error(idx_header(0x08, {}), "ndim is 0");
  const auto dims3 = idx_header(0x08, {2, 2, 2});
  expect_error(std::vector<unsigned char>(dims3.begin(), dims3.end() - 3), "the header declares 3 dims");
  auto short_data = idx_header(0x08, {2, 3});
  short_data.insert(short_data.end(), 5, 7);
  expect_error(short_data, "need 6 data bytes, found only 5");
  auto long_data = idx_header(0x08, {2, 3});
  long_data.insert(long_data.end(), 7, 7);
  expect_error(long_data, "the file has more");
  // Dims claiming 2^96 bytes (overflow) or 4 GiB with 3 bytes present: an error, no huge allocation.
  auto absurd = idx_header(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  expect_error(absurd, "absurd dims");
  auto huge = idx_header(0x08, {0xFFFFFFFFu});
  huge.insert(huge.end(), 3, 1);
  expect_error(huge, "found only 3");
  CHECK(idx_error(dir.file("missing.gz")).find("No such file") != std::string::npos);

  // A gzip file cut short, or with its compressed data damaged.
  std::vector<std::uint8_t> values(4000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>(i * i % 251);
  const std::string gz = dir.file("x.gz");
  sorix::data::write_idx_u8(gz, values, {40, 100});
  const auto bytes = read_bytes(gz);
  for (std::size_t cut : {bytes.size() - 1, bytes.size() - 8, bytes.size() / 2, std::size_t{12}}) {
    write_bytes(p, std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    const std::string msg = idx_error(p);
    INFO("cut at " << cut << ": " << msg);
    CHECK(msg.find("truncated") != std::string::npos);
  }
  auto damaged = bytes;
  damaged[bytes.size() - 6] ^= 0xFF;  // the gzip trailer's CRC
  write_bytes(p, damaged);
  CHECK(idx_error(p).find("corrupt compressed data") != std::string::npos);
}

TEST_CASE("TensorDataset checks its tensors and copies rows", "[data]") {
  CHECK_THROWS_AS(TensorDataset(sorix::zeros({3, 2}), sorix::zeros({4}, Dtype::Int64)), std::invalid_argument);
  try {
    TensorDataset(sorix::zeros({3, 2}), sorix::zeros({4}, Dtype::Int64));
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("TensorDataset") == 0);
    CHECK(msg.find("[3, 2]") != std::string::npos);
    CHECK(msg.find("[4]") != std::string::npos);
  }
  CHECK_THROWS_AS(TensorDataset(sorix::zeros({}), sorix::zeros({}, Dtype::Int64)), std::invalid_argument);
  CHECK_THROWS_AS(TensorDataset(Tensor(), sorix::zeros({1})), std::invalid_argument);

  TensorDataset ds = counting_dataset(4, 3);
  CHECK(ds.size() == 4);
  auto e = ds.get(2);
  CHECK(e.data.shape() == Shape{3});
  CHECK(e.data.data_ptr<float>()[1] == 2.5f);
  CHECK(e.target.dim() == 0);
  CHECK(e.target.item<std::int64_t>() == 2);
  e.data.data_ptr<float>()[0] = -1.0f;  // a copy: the dataset is unchanged
  CHECK(ds.data().data_ptr<float>()[6] == 2.0f);
  CHECK_THROWS_AS(ds.get(4), std::out_of_range);
  CHECK_THROWS_AS(ds.get(-1), std::out_of_range);
}

TEST_CASE("DataLoader covers every example once per epoch with the right batch shapes", "[data]") {
  TensorDataset ds = counting_dataset(1000, 3);
  for (bool shuffle : {false, true}) {
    DataLoader loader(ds, DataLoaderOptions().batch_size(64).shuffle(shuffle).seed(5));
    CHECK(loader.num_batches() == 16);
    std::vector<std::int64_t> seen;
    std::int64_t batches = 0;
    for (const Batch& b : loader) {
      const std::int64_t expect_rows = batches < 15 ? 64 : 1000 - 15 * 64;
      REQUIRE(b.data.shape() == Shape{expect_rows, 3});
      REQUIRE(b.target.shape() == Shape{expect_rows});
      REQUIRE(b.data.dtype() == Dtype::Float32);
      REQUIRE(b.target.dtype() == Dtype::Int64);
      for (std::int64_t r = 0; r < expect_rows; ++r) {
        const std::int64_t i = b.target.data_ptr<std::int64_t>()[r];
        seen.push_back(i);
        // The data row travels with its target.
        CHECK(b.data.data_ptr<float>()[r * 3 + 2] == static_cast<float>(i) + 1.0f);
      }
      ++batches;
    }
    CHECK(batches == 16);
    CHECK(seen.size() == 1000);
    CHECK(std::set<std::int64_t>(seen.begin(), seen.end()).size() == 1000);
    if (!shuffle) {
      for (std::int64_t i = 0; i < 1000; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i);
    }
  }
  // drop_last drops the short batch.
  DataLoader dropping(ds, DataLoaderOptions(64).shuffle(true).seed(5).drop_last(true));
  CHECK(dropping.num_batches() == 15);
  std::int64_t n = 0;
  for (const Batch& b : dropping) {
    CHECK(b.data.size(0) == 64);
    ++n;
  }
  CHECK(n == 15);
  // Fewer examples than one batch; an empty dataset.
  TensorDataset tiny = counting_dataset(3, 2);
  CHECK(DataLoader(tiny, DataLoaderOptions(8).drop_last(true)).num_batches() == 0);
  DataLoader small(tiny, DataLoaderOptions(8));
  CHECK(epoch_order(small) == std::vector<std::int64_t>{0, 1, 2});
  TensorDataset none = counting_dataset(0, 2);
  DataLoader empty_loader(none, DataLoaderOptions(4).shuffle(true).seed(1));
  CHECK(empty_loader.begin() == empty_loader.end());
  // Bad options.
  CHECK_THROWS_AS(DataLoader(ds, DataLoaderOptions(0)), std::invalid_argument);
  sorix::Generator g(1);
  CHECK_THROWS_AS(DataLoader(ds, DataLoaderOptions(4).seed(1).generator(&g)), std::invalid_argument);
}

TEST_CASE("DataLoader owns a dataset handed over as a temporary or a shared pointer", "[data]") {
  // The temporary dies at the end of the declaration; the loader keeps its own (moved) copy.
  DataLoader owning(counting_dataset(10, 2), DataLoaderOptions(4));
  CHECK(owning.num_batches() == 3);
  CHECK(epoch_order(owning) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  std::shared_ptr<const sorix::data::Dataset> shared = std::make_shared<TensorDataset>(counting_dataset(5, 2));
  DataLoader by_pointer(shared, DataLoaderOptions(2));
  shared.reset();
  CHECK(by_pointer.dataset().size() == 5);
  CHECK(epoch_order(by_pointer) == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK_THROWS_AS(DataLoader(std::shared_ptr<const sorix::data::Dataset>(), DataLoaderOptions(2)), std::invalid_argument);
}

TEST_CASE("DataLoader shuffling is reproducible, differs across epochs and seeds", "[data]") {
  TensorDataset ds = counting_dataset(500, 1);
  auto opts = [](std::uint64_t seed) { return DataLoaderOptions(32).shuffle(true).seed(seed); };
  DataLoader a(ds, opts(11));
  DataLoader b(ds, opts(11));
  DataLoader c(ds, opts(12));
  const auto a1 = epoch_order(a), a2 = epoch_order(a), a3 = epoch_order(a);
  CHECK(a1 == epoch_order(b));
  CHECK(a2 == epoch_order(b));
  CHECK(a1 != a2);
  CHECK(a2 != a3);
  CHECK(a1 != epoch_order(c));
  CHECK(a.epochs_started() == 3);

  // Epoch k's order is randperm drawn from the seed's stream, k-th in turn.
  sorix::Generator g(11);
  for (const auto& order : {a1, a2, a3}) {
    Tensor perm = sorix::randperm(500, Dtype::Int64, &g);
    CHECK(std::vector<std::int64_t>(perm.data_ptr<std::int64_t>(), perm.data_ptr<std::int64_t>() + 500) == order);
  }
  // An external generator with the same seed gives the same epochs, and is advanced.
  sorix::Generator ext(11);
  DataLoader d(ds, DataLoaderOptions(32).shuffle(true).generator(&ext));
  CHECK(epoch_order(d) == a1);
  CHECK(ext.offset() > 0);
  // Without seed or generator, shuffling follows the default generator (sorix::manual_seed).
  sorix::manual_seed(11);
  DataLoader e(ds, DataLoaderOptions(32).shuffle(true));
  CHECK(epoch_order(e) == a1);

  // Resuming: restoring a loader's state between epochs replays the next epoch.
  DataLoader r(ds, opts(11));
  epoch_order(r);
  const sorix::StateDict saved = r.state_dict();
  const auto next = epoch_order(r);
  CHECK(next == a2);
  DataLoader fresh(ds, opts(99));
  fresh.load_state_dict(saved);
  CHECK(fresh.epochs_started() == 1);
  CHECK(epoch_order(fresh) == a2);
  CHECK_THROWS_AS(fresh.load_state_dict(sorix::StateDict{}), std::invalid_argument);
}

TEST_CASE("DataLoader batches are identical at 1, 2, 3 and 8 threads and match a serial gather", "[data]") {
  // 784-float rows, batches of 512 rows (1.6 MB): the row gather runs as parallel chunks.
  const std::int64_t n = 2000, width = 784;
  TensorDataset ds = counting_dataset(n, width);
  auto run = [&] {
    DataLoader loader(ds, DataLoaderOptions(512).shuffle(true).seed(3));
    std::vector<Batch> out;
    for (int epoch = 0; epoch < 2; ++epoch) {
      for (const Batch& b : loader) out.push_back(b);
    }
    return out;
  };
  const auto results = sorix::testing::at_thread_counts({1, 2, 3, 8}, run);
  const auto& ref = results[0];
  REQUIRE(ref.size() == 8);
  for (std::size_t t = 1; t < results.size(); ++t) {
    REQUIRE(results[t].size() == ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
      CHECK(bit_identical(results[t][i].data, ref[i].data));
      CHECK(bit_identical(results[t][i].target, ref[i].target));
    }
  }
  // Serial reference: each batch row equals the dataset row its target names.
  for (const Batch& b : ref) {
    for (std::int64_t r = 0; r < b.data.size(0); ++r) {
      const std::int64_t i = b.target.data_ptr<std::int64_t>()[r];
      CHECK(std::memcmp(b.data.data_ptr<float>() + r * width, ds.data().data_ptr<float>() + i * width,
                        width * sizeof(float)) == 0);
    }
  }
  // The generic get()-and-stack path gives the same batches as the TensorDataset fast path.
  GenericView generic(ds);
  DataLoader slow(generic, DataLoaderOptions(512).shuffle(true).seed(3));
  std::size_t i = 0;
  for (const Batch& b : slow) {
    CHECK(bit_identical(b.data, ref[i].data));
    CHECK(bit_identical(b.target, ref[i].target));
    ++i;
  }
  CHECK(i == 4);
}

TEST_CASE("DataLoader's generic path refuses examples of different shapes", "[data]") {
  struct Ragged : sorix::data::Dataset {
    std::int64_t size() const override { return 4; }
    sorix::data::Example get(std::int64_t i) const override {
      return {sorix::zeros({i == 2 ? 3 : 2}), sorix::zeros({}, Dtype::Int64)};
    }
  } ragged;
  DataLoader loader(ragged, DataLoaderOptions(4));
  try {
    loader.begin();
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("example 2") != std::string::npos);
    CHECK(msg.find("[3]") != std::string::npos);
  }
  // Examples without targets give batches without targets.
  struct NoTarget : sorix::data::Dataset {
    std::int64_t size() const override { return 3; }
    sorix::data::Example get(std::int64_t i) const override { return {sorix::full({2}, static_cast<double>(i)), Tensor()}; }
  } unlabeled;
  DataLoader u(unlabeled, DataLoaderOptions(2));
  std::int64_t batches = 0;
  for (const Batch& b : u) {
    CHECK_FALSE(b.target.defined());
    CHECK(b.data.size(1) == 2);
    ++batches;
  }
  CHECK(batches == 2);
}

TEST_CASE("Fashion-MNIST reads as 60000x784 / 10000x784 with labels 0..9", "[data]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST not installed at " << dir << ": skipped");
    return;
  }
  for (bool train : {true, false}) {
    sorix::data::ImageDataset ds = sorix::data::load_fashion_mnist(dir, train);
    const std::int64_t n = train ? 60000 : 10000;
    REQUIRE(ds.size() == n);
    REQUIRE(ds.image_shape() == Shape{784});
    const Tensor images = ds.data();
    REQUIRE(images.shape() == Shape{n, 784});
    REQUIRE(ds.targets().shape() == Shape{n});
    REQUIRE(ds.targets().dtype() == Dtype::Int64);
    std::vector<std::int64_t> counts(10, 0);
    const std::int64_t* y = ds.targets().data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      REQUIRE(y[i] >= 0);
      REQUIRE(y[i] <= 9);
      ++counts[static_cast<std::size_t>(y[i])];
    }
    for (auto c : counts) CHECK(c == n / 10);  // Fashion-MNIST is balanced
    const float* x = images.data_ptr<float>();
    float lo = 1, hi = 0;
    for (std::int64_t i = 0; i < n * 784; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    CHECK(lo == 0.0f);
    CHECK(hi == 1.0f);
  }
  CHECK_THROWS_AS(sorix::data::load_fashion_mnist("/nonexistent-dir", true), std::runtime_error);
}

namespace {
// n images of `shape` whose bytes run through 0..255 (every value appears), labels i % 10.
sorix::data::ImageDataset byte_images(std::int64_t n, const Shape& shape, std::vector<std::uint8_t>& pixels) {
  std::int64_t per = 1;
  for (auto d : shape) per *= d;
  pixels.resize(static_cast<std::size_t>(n * per));
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>((i * 7 + i / 256) % 256);
  Tensor labels = sorix::empty({n}, Dtype::Int64);
  for (std::int64_t i = 0; i < n; ++i) labels.data_ptr<std::int64_t>()[i] = i % 10;
  return sorix::data::ImageDataset(pixels, shape, labels);
}
}  // namespace

TEST_CASE("ImageDataset gives bytes as float32 value / 255, per example and per batch", "[data]") {
  std::vector<std::uint8_t> pixels;
  const sorix::data::ImageDataset ds = byte_images(6, {2, 3}, pixels);
  CHECK(ds.size() == 6);
  const auto e = ds.get(4);
  REQUIRE(e.data.shape() == Shape{2, 3});
  REQUIRE(e.data.dtype() == Dtype::Float32);
  CHECK(e.target.item<std::int64_t>() == 4);
  for (std::int64_t j = 0; j < 6; ++j) {
    CHECK(e.data.data_ptr<float>()[j] == static_cast<float>(pixels[static_cast<std::size_t>(24 + j)]) / 255.0f);
  }
  const std::int64_t idx[] = {5, 0, 5, 2};
  const Batch b = ds.get_batch(idx, 4);
  REQUIRE(b.data.shape() == Shape{4, 2, 3});
  REQUIRE(b.target.shape() == Shape{4});
  const Tensor all = ds.data();
  REQUIRE(all.shape() == Shape{6, 2, 3});
  for (std::int64_t r = 0; r < 4; ++r) {
    CHECK(b.target.data_ptr<std::int64_t>()[r] == idx[r] % 10);
    for (std::int64_t j = 0; j < 6; ++j) {
      const float want = static_cast<float>(pixels[static_cast<std::size_t>(idx[r] * 6 + j)]) / 255.0f;
      CHECK(b.data.data_ptr<float>()[r * 6 + j] == want);
      CHECK(all.data_ptr<float>()[idx[r] * 6 + j] == want);
    }
  }
  // 0 and 255 map to exactly 0 and 1.
  CHECK(std::count(pixels.begin(), pixels.end(), 0) > 0);
  const std::vector<std::uint8_t> extremes{0, 255};
  const sorix::data::ImageDataset two(extremes, Shape{1}, sorix::zeros({2}, Dtype::Int64));
  CHECK(two.data().data_ptr<float>()[0] == 0.0f);
  CHECK(two.data().data_ptr<float>()[1] == 1.0f);
}

TEST_CASE("ImageDataset batches are identical at 1, 2, 3 and 8 threads and equal a TensorDataset's", "[data]") {
  // 700 images of 784 bytes: a batch of 500 is ~1.5 MB of floats, well past the inline size.
  std::vector<std::uint8_t> pixels;
  const sorix::data::ImageDataset images = byte_images(700, {784}, pixels);
  const TensorDataset floats(images.data(), images.targets());
  DataLoader loader(images, DataLoaderOptions(500).shuffle(true).seed(3));
  DataLoader float_loader(floats, DataLoaderOptions(500).shuffle(true).seed(3));
  auto runs = sorix::testing::at_thread_counts({1, 2, 3, 8}, [&] {
    std::vector<Tensor> out;
    for (const Batch& b : loader) {
      out.push_back(b.data);
      out.push_back(b.target);
    }
    return out;
  });
  std::vector<Tensor> want;
  for (int epoch = 0; epoch < 4; ++epoch) {
    for (const Batch& b : float_loader) {
      want.push_back(b.data);
      want.push_back(b.target);
    }
  }
  // Each run is the next epoch of the same seeded loaders: epoch k of both must agree.
  for (std::size_t r = 0; r < runs.size(); ++r) {
    REQUIRE(runs[r].size() == 4);
    for (std::size_t k = 0; k < 4; ++k) CHECK(bit_identical(runs[r][k], want[r * 4 + k]));
  }
}

TEST_CASE("ImageDataset and get_batch reject bad input with clear errors", "[data]") {
  using sorix::testing::contains;
  using sorix::testing::message_of;
  const std::vector<std::uint8_t> six(6, 1);
  const Tensor labels2 = sorix::zeros({2}, Dtype::Int64);
  CHECK(contains(message_of([&] { sorix::data::ImageDataset(six, Shape{4}, labels2); }),
                 "6 pixel bytes do not make 2 images of shape [4] (8 bytes expected)"));
  CHECK(contains(message_of([&] { sorix::data::ImageDataset(six, Shape{3}, sorix::zeros({2})); }),
                 "labels must be a 1-D int64 tensor, got float32[2]"));
  CHECK(contains(message_of([&] { sorix::data::ImageDataset(six, Shape{-3}, labels2); }), "negative dimension"));
  const sorix::data::ImageDataset ds(six, Shape{3}, labels2);
  const std::int64_t bad[] = {0, 2};
  CHECK(contains(message_of<std::out_of_range>([&] { ds.get_batch(bad, 2); }),
                 "ImageDataset::get_batch: index 2 (position 1 of the batch) out of range for a dataset of size 2"));
  CHECK_THROWS_AS(ds.get(-1), std::out_of_range);
  // prefetch is only a hint: bad indices and null pointers are ignored, nothing changes.
  const std::int64_t hints[] = {-5, 0, 1, 2, 1000};
  CHECK_NOTHROW(ds.prefetch(hints, 5));
  CHECK_NOTHROW(ds.prefetch(nullptr, 3));
  CHECK(ds.get(1).data.data_ptr<float>()[0] == 1.0f / 255.0f);
  const TensorDataset td(sorix::zeros({2, 3}), labels2);
  CHECK_NOTHROW(td.prefetch(hints, 5));
  const std::int64_t neg[] = {-1};
  CHECK_THROWS_AS(td.get_batch(neg, 1), std::out_of_range);
}
