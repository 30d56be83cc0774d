// Checkpoint file format: round trips, and every kind of damage rejected cleanly.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sorix/sorix.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_files.hpp"
#include "support/values.hpp"

namespace fs = std::filesystem;
using sorix::Dtype;
using sorix::StateDict;
using sorix::Tensor;
using sorix::testing::read_bytes;
using sorix::testing::TempDir;
using sorix::testing::write_bytes;
using sorix::testing::same_state;

namespace {

StateDict small_state() {
  StateDict s;
  s.insert("w", sorix::tensor({{1.5f, -2.0f}, {0.25f, 3.0f}}));
  s.insert("b", sorix::tensor({7, -8, 9}));
  return s;
}

// A hand-built file: magic, version, count, then `body` (no CRC unless appended by the caller).
std::vector<unsigned char> header(std::uint32_t version, std::uint64_t count) {
  std::vector<unsigned char> b = {'S', 'O', 'R', 'I', 'X', 'C', 'K', 'P'};
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(version >> (8 * i)));
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<unsigned char>(count >> (8 * i)));
  return b;
}
template <class U>
void put(std::vector<unsigned char>& b, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) b.push_back(static_cast<unsigned char>(static_cast<std::uint64_t>(v) >> (8 * i)));
}

// Bitwise CRC-32 (the zlib / IEEE 802.3 polynomial), independent of the library's zlib call.
std::uint32_t crc32_ref(const std::vector<unsigned char>& b) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : b) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// Replaces the trailing CRC with the correct one for the bytes before it.
void fix_crc(std::vector<unsigned char>& b) {
  REQUIRE(b.size() >= 4);
  b.erase(b.end() - 4, b.end());  // (not resize: GCC's ASan build warned of a growing path it cannot rule out)
  const std::uint32_t c = crc32_ref(b);
  put<std::uint32_t>(b, c);
}

std::string load_error(const std::string& path) {
  try {
    sorix::load_state(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

bool has_temp_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("save_state/load_state round trip every dtype, 0-d and empty tensors", "[serialize]") {
  TempDir dir("sorix_serialize_");
  StateDict s;
  s.insert("f32", sorix::tensor({{1.0f, -0.0f, 3.5f}, {std::numeric_limits<float>::infinity(), 1e-40f, -7.25f}}));
  s.insert("f64", sorix::tensor({0.1, -1e300, std::numeric_limits<double>::quiet_NaN(), 5e-324}));
  s.insert("i64", sorix::tensor({std::int64_t{-1}, std::numeric_limits<std::int64_t>::min(),
                                 std::numeric_limits<std::int64_t>::max()}));
  Tensor scalar = sorix::empty({}, Dtype::Float64);
  scalar.data_ptr<double>()[0] = 2.75;
  s.insert("scalar.f64", scalar);
  Tensor iscalar = sorix::empty({}, Dtype::Int64);
  iscalar.data_ptr<std::int64_t>()[0] = 42;
  s.insert("scalar.i64", iscalar);
  s.insert("empty.f32", sorix::zeros({0}, Dtype::Float32));
  s.insert("empty.3d", sorix::zeros({2, 0, 5}, Dtype::Int64));
  s.insert("big", sorix::arange(0.0, 100000.0, 1.0, Dtype::Float32).reshape({100, 1000}));
  s.insert("", sorix::ones({1}, Dtype::Float64));  // empty names are legal
  s.insert("ünïcode/name with spaces", sorix::ones({1, 1, 1, 1, 1, 2}));
  const std::string path = dir.file("all.sorix");
  sorix::save_state(s, path);
  const StateDict r = sorix::load_state(path);
  CHECK(same_state(s, r));
  CHECK(r.at("scalar.f64").dim() == 0);
  CHECK(r.at("empty.3d").shape() == sorix::Shape{2, 0, 5});
  CHECK_FALSE(r.at("f32").requires_grad());
  CHECK_FALSE(has_temp_files(dir.path));

  // An empty StateDict is a valid (24-byte) file.
  sorix::save_state(StateDict{}, dir.file("empty.sorix"));
  CHECK(sorix::load_state(dir.file("empty.sorix")).empty());
  CHECK(fs::file_size(dir.file("empty.sorix")) == 24);
}

TEST_CASE("the file layout is the documented one", "[serialize]") {
  TempDir dir("sorix_serialize_");
  StateDict s;
  s.insert("ab", sorix::tensor({std::int64_t{258}}));
  sorix::save_state(s, dir.file("x"));
  const auto b = read_bytes(dir.file("x"));
  std::vector<unsigned char> expect = header(1, 1);
  put<std::uint32_t>(expect, 2);
  expect.push_back('a');
  expect.push_back('b');
  expect.push_back(2);  // int64
  put<std::uint32_t>(expect, 1);
  put<std::int64_t>(expect, 1);
  put<std::int64_t>(expect, 258);
  REQUIRE(b.size() == expect.size() + 4);
  CHECK(std::vector<unsigned char>(b.begin(), b.end() - 4) == expect);
  // zlib's crc32 of the bytes above (checked independently with Python's zlib.crc32).
  const std::uint32_t crc = b[b.size() - 4] | (b[b.size() - 3] << 8) | (b[b.size() - 2] << 16) |
                            (static_cast<std::uint32_t>(b[b.size() - 1]) << 24);
  CHECK(crc == 0x91EB5336u);
  CHECK(crc == crc32_ref(expect));
}

TEST_CASE("load_state rejects a file truncated at any byte", "[serialize]") {
  TempDir dir("sorix_serialize_");
  const std::string good = dir.file("good.sorix");
  sorix::save_state(small_state(), good);
  const auto bytes = read_bytes(good);
  REQUIRE(bytes.size() > 40);
  const std::string cut = dir.file("cut.sorix");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(cut, std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    const std::string msg = load_error(cut);
    INFO("truncated to " << n << " bytes: " << msg);
    CHECK(msg.find("load_state: '" + cut + "'") == 0);
    CHECK((msg.find("truncated") != std::string::npos || msg.find("corrupt") != std::string::npos ||
           msg.find("CRC") != std::string::npos));
  }
  // One byte too many is also an error, not silently ignored.
  auto longer = bytes;
  longer.push_back(0);
  write_bytes(cut, longer);
  CHECK(load_error(cut) != "(no error)");
}

TEST_CASE("load_state detects any flipped byte", "[serialize]") {
  TempDir dir("sorix_serialize_");
  const std::string good = dir.file("good.sorix");
  sorix::save_state(small_state(), good);
  const auto bytes = read_bytes(good);
  const std::string bad = dir.file("bad.sorix");
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto b = bytes;
    b[i] ^= 0x5A;
    write_bytes(bad, b);
    INFO("byte " << i);
    CHECK(load_error(bad) != "(no error)");
  }
  // A flipped data byte passes every structural check: only the CRC catches it.
  auto b = bytes;
  b[b.size() - 6] ^= 0x01;  // inside the last int64 value
  write_bytes(bad, b);
  CHECK(load_error(bad).find("CRC mismatch") != std::string::npos);
  // So does a flipped CRC.
  b = bytes;
  b.back() ^= 0x80;
  write_bytes(bad, b);
  CHECK(load_error(bad).find("CRC mismatch") != std::string::npos);
}

TEST_CASE("load_state names wrong magic, version and absurd sizes", "[serialize]") {
  TempDir dir("sorix_serialize_");
  const std::string p = dir.file("f");
  // A correct CRC, so that the structural error itself is what load_state must find.
  auto with_crc_space = [](std::vector<unsigned char> b) {
    put<std::uint32_t>(b, 0);
    fix_crc(b);
    return b;
  };

  SECTION("missing file") {
    const std::string msg = load_error(dir.file("nope.sorix"));
    CHECK(msg.find("nope.sorix") != std::string::npos);
    CHECK(msg.find("No such file") != std::string::npos);
  }
  SECTION("a directory") {
    CHECK(load_error(dir.path.string()).find("not a regular file") != std::string::npos);
  }
  SECTION("wrong magic") {
    auto b = with_crc_space(header(1, 0));
    b[0] = 'X';
    write_bytes(p, b);
    CHECK(load_error(p).find("bad magic") != std::string::npos);
    write_bytes(p, {'P', 'K', 3, 4});
    CHECK(load_error(p).find("bad magic") != std::string::npos);
  }
  SECTION("unsupported version") {
    write_bytes(p, with_crc_space(header(2, 0)));
    CHECK(load_error(p).find("unsupported format version 2") != std::string::npos);
    write_bytes(p, with_crc_space(header(0, 0)));
    CHECK(load_error(p).find("unsupported format version 0") != std::string::npos);
  }
  SECTION("absurd entry count") {
    write_bytes(p, with_crc_space(header(1, std::uint64_t{1} << 60)));
    CHECK(load_error(p).find("corrupt entry count") != std::string::npos);
  }
  SECTION("absurd name length") {
    auto b = header(1, 1);
    put<std::uint32_t>(b, 0xFFFFFFF0u);
    b.insert(b.end(), 20, 'x');
    write_bytes(p, with_crc_space(b));
    CHECK(load_error(p).find("corrupt name length") != std::string::npos);
  }
  SECTION("unknown dtype code") {
    auto b = header(1, 1);
    put<std::uint32_t>(b, 1);
    b.push_back('a');
    b.push_back(7);
    put<std::uint32_t>(b, 0);
    put<float>(b, 0);
    write_bytes(p, with_crc_space(b));
    CHECK(load_error(p).find("unknown dtype code 7") != std::string::npos);
  }
  SECTION("ndim above 64") {
    auto b = header(1, 1);
    put<std::uint32_t>(b, 1);
    b.push_back('a');
    b.push_back(0);
    put<std::uint32_t>(b, 65);
    for (int i = 0; i < 65; ++i) put<std::int64_t>(b, 1);
    put<std::uint32_t>(b, 0);
    write_bytes(p, with_crc_space(b));
    CHECK(load_error(p).find("corrupt ndim 65") != std::string::npos);
  }
  SECTION("negative, overflowing or oversized dims") {
    for (auto dims : std::vector<std::vector<std::int64_t>>{
             {-1}, {std::int64_t{1} << 40, std::int64_t{1} << 40}, {std::int64_t{1} << 62}, {1000}}) {
      auto b = header(1, 1);
      put<std::uint32_t>(b, 1);
      b.push_back('a');
      b.push_back(1);  // float64
      put<std::uint32_t>(b, static_cast<std::uint32_t>(dims.size()));
      for (auto d : dims) put<std::int64_t>(b, d);
      put<double>(b, 0);
      write_bytes(p, with_crc_space(b));
      const std::string msg = load_error(p);
      INFO(msg);
      CHECK(msg.find("corrupt") != std::string::npos);
      CHECK(msg.find("'a'") != std::string::npos);
    }
  }
  SECTION("duplicate names") {
    // Structurally valid with a correct CRC: written by save_state, then a name changed in place.
    StateDict s;
    s.insert("aa", sorix::zeros({1}));
    s.insert("ab", sorix::zeros({1}));
    sorix::save_state(s, p);
    auto b = read_bytes(p);
    const std::size_t second = 20 + (4 + 2 + 1 + 4 + 8 + 4) + 4 + 1;  // the second name's last byte
    REQUIRE(b[second] == 'b');
    b[second] = 'a';
    write_bytes(p, b);
    CHECK(load_error(p).find("CRC mismatch") != std::string::npos);
    fix_crc(b);
    write_bytes(p, b);
    CHECK(load_error(p).find("duplicate entry name 'aa'") != std::string::npos);
  }
}

TEST_CASE("save_state is atomic and cleans up after failures", "[serialize]") {
  TempDir dir("sorix_serialize_");
  const std::string path = dir.file("model.sorix");
  const StateDict old_state = small_state();
  sorix::save_state(old_state, path);

  SECTION("overwriting replaces the file and leaves no temp file") {
    StateDict s;
    s.insert("new", sorix::ones({3}, Dtype::Float64));
    sorix::save_state(s, path);
    CHECK(same_state(sorix::load_state(path), s));
    CHECK_FALSE(has_temp_files(dir.path));
  }
  SECTION("the path is a directory") {
    const std::string sub = dir.file("subdir");
    fs::create_directory(sub);
    try {
      sorix::save_state(old_state, sub);
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find(sub) != std::string::npos);
      CHECK(msg.find("Is a directory") != std::string::npos);
    }
    CHECK(fs::is_directory(sub));
    CHECK_FALSE(has_temp_files(dir.path));
  }
  SECTION("the directory does not exist") {
    const std::string missing = dir.file("no/such/dir/x.sorix");
    try {
      sorix::save_state(old_state, missing);
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("No such file or directory") != std::string::npos);
    }
  }
  SECTION("a write failing half way keeps the old file intact") {
    // A file-size limit makes the write fail with EFBIG after some bytes, even for root.
    StateDict big;
    big.insert("w", sorix::ones({100000}));
    struct rlimit old_limit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_limit;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string msg;
    try {
      sorix::save_state(big, path);
    } catch (const std::runtime_error& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    INFO(msg);
    CHECK(msg.find("save_state: cannot write '" + path + "'") == 0);
    CHECK(msg.find("File too large") != std::string::npos);
    CHECK(same_state(sorix::load_state(path), old_state));
    CHECK_FALSE(has_temp_files(dir.path));
  }
  SECTION("an undefined tensor is refused before anything is written") {
    StateDict s;
    s.insert("ok", sorix::ones({1}));
    s.insert("bad", Tensor());
    CHECK_THROWS_AS(sorix::save_state(s, path), std::invalid_argument);
    CHECK(same_state(sorix::load_state(path), old_state));
    CHECK_FALSE(has_temp_files(dir.path));
  }
}

namespace {
// Two different checkpoints big enough (~0.8 MB) that a save takes a while.
StateDict filled_state(float v) {
  StateDict s;
  s.insert("w", sorix::full({200000}, v));
  s.insert("step", sorix::tensor({static_cast<std::int64_t>(v)}));
  return s;
}

std::size_t count_temp_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp.") != std::string::npos;
  return n;
}

// In a forked child: saves `a` and `b` in turn to `path` until killed, or `times` saves; never
// returns. Only file I/O happens here (the tensors are contiguous: no parallel work in the child).
[[noreturn]] void save_in_child(const StateDict& a, const StateDict& b, const std::string& path, int times) {
  try {
    for (int i = 0; times < 0 || i < times; ++i) sorix::save_state(i % 2 ? a : b, path);
  } catch (...) {
    ::_exit(1);
  }
  ::_exit(0);
}
}  // namespace

TEST_CASE("a save killed at any moment leaves the old or the new checkpoint, and no temporaries pile up",
          "[serialize][kill]") {
  TempDir dir("sorix_serialize_kill_");
  const std::string path = dir.file("model.sorix");
  const StateDict a = filled_state(1.0f), b = filled_state(2.0f);
  sorix::save_state(a, path);
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> delay_us(0, 3000);
  int old_or_new = 0;
  for (int round = 0; round < 200; ++round) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) save_in_child(a, b, path, -1);
    ::usleep(static_cast<useconds_t>(delay_us(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    const StateDict loaded = sorix::load_state(path);  // never throws: a complete file is in place
    const bool ok = same_state(loaded, a) || same_state(loaded, b);
    old_or_new += ok;
    // Each child's first save removed the temporaries of the children killed before it.
    REQUIRE(count_temp_files(dir.path) <= 1);
  }
  CHECK(old_or_new == 200);
  sorix::save_state(a, path);  // removes the last killed child's temporary
  CHECK(count_temp_files(dir.path) == 0);
}

TEST_CASE("threads and processes saving to one path while another thread loads it", "[serialize][kill]") {
  TempDir dir("sorix_serialize_race_");
  const std::string path = dir.file("model.sorix");
  const StateDict a = filled_state(3.0f), b = filled_state(4.0f);
  sorix::save_state(a, path);
  // Processes first (fork before this test starts threads of its own).
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) save_in_child(a, b, path, 30);
    children.push_back(child);
  }
  std::atomic<int> writers_left{3};
  std::atomic<int> save_errors{0}, loads{0}, bad_loads{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        try {
          sorix::save_state((i + t) % 2 ? a : b, path);
        } catch (...) {
          ++save_errors;
        }
      }
      --writers_left;
    });
  }
  std::thread reader([&] {
    while (writers_left.load() > 0 || loads.load() < 20) {
      try {
        const StateDict loaded = sorix::load_state(path);
        bad_loads += !(same_state(loaded, a) || same_state(loaded, b));
      } catch (...) {
        ++bad_loads;
      }
      ++loads;
    }
  });
  for (auto& w : writers) w.join();
  reader.join();
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(save_errors == 0);
  CHECK(bad_loads == 0);
  CHECK(loads >= 20);
  CHECK(count_temp_files(dir.path) == 0);
}

TEST_CASE("a zero dim beside dims whose product overflows is refused, naming the file and entry", "[serialize][fuzz]") {
  // Found by fuzz_checkpoint (tests/fuzz): with a zero dim the data size is 0 bytes, so nothing in
  // the file bounds the other dims; the tensor's strides (their product) then overflowed in signed
  // arithmetic inside xtensor. The file is otherwise valid, CRC included.
  TempDir dir("sorix_ckpt_");
  const std::string p = dir.file("zero.sorix");
  for (auto dims : std::vector<std::vector<std::int64_t>>{{0, std::int64_t{1} << 32, std::int64_t{1} << 32},
                                                         {std::int64_t{1} << 40, 0, std::int64_t{1} << 40},
                                                         {0, std::int64_t{1} << 61}}) {
    auto b = header(1, 1);
    put<std::uint32_t>(b, 4);
    for (char ch : std::string("zero")) b.push_back(static_cast<unsigned char>(ch));
    b.push_back(0);  // float32
    put<std::uint32_t>(b, static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) put<std::int64_t>(b, d);
    put<std::uint32_t>(b, 0);
    fix_crc(b);
    write_bytes(p, b);
    const std::string msg = load_error(p);
    INFO(msg);
    CHECK(msg.find("load_state: '" + p + "'") != std::string::npos);
    CHECK(msg.find("entry 0 ('zero')") != std::string::npos);
    CHECK(msg.find("overflows") != std::string::npos);
  }
  // A zero dim beside small dims is an ordinary empty tensor.
  StateDict s;
  s.insert("e", sorix::zeros({0, 1 << 20, 3}));
  sorix::save_state(s, p);
  CHECK(sorix::load_state(p).at("e").shape() == sorix::Shape{0, 1 << 20, 3});
}
