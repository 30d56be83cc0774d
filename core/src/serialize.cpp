// Checkpoint files (format: core/include/sorix/core/serialize.hpp, docs/checkpoint-format.md).
#include "sorix/core/serialize.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "sorix_core/internal.hpp"

namespace sorix {

namespace {

constexpr char kMagic[8] = {'S', 'O', 'R', 'I', 'X', 'C', 'K', 'P'};
constexpr std::uint32_t kMaxNdim = 64;
// The smallest valid file: magic, version, entry count, CRC.
constexpr std::uint64_t kMinFileSize = 8 + 4 + 8 + 4;
// Bytes per entry at least: name length, dtype, ndim.
constexpr std::uint64_t kMinEntrySize = 4 + 1 + 4;

// The on-disk dtype codes are fixed by the format, independent of the Dtype enum's values.
std::uint8_t dtype_code(Dtype d) {
  switch (d) {
    case Dtype::Float32: return 0;
    case Dtype::Float64: return 1;
    case Dtype::Int64: return 2;
    // Added later, without a version bump: files of codes 0-2 read as before; an older reader
    // refuses a file with these codes as an unknown dtype (docs/checkpoint-format.md).
    case Dtype::Bool: return 3;
    case Dtype::UInt8: return 4;
    case Dtype::Int32: return 5;
  }
  return 255;
}

bool dtype_from_code(std::uint8_t code, Dtype& out) {
  switch (code) {
    case 0: out = Dtype::Float32; return true;
    case 1: out = Dtype::Float64; return true;
    case 2: out = Dtype::Int64; return true;
    case 3: out = Dtype::Bool; return true;
    case 4: out = Dtype::UInt8; return true;
    case 5: out = Dtype::Int32; return true;
    default: return false;
  }
}

template <class U>
void put_le(std::vector<unsigned char>& buf, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) buf.push_back(static_cast<unsigned char>((v >> (8 * i)) & 0xFF));
}

template <class U>
U get_le(const unsigned char* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | (static_cast<U>(p[i]) << (8 * i)));
  return v;
}

// Reverses the bytes of each `width`-byte element (big-endian hosts only).
[[maybe_unused]] void swap_elements(unsigned char* p, std::size_t bytes, std::size_t width) {
  for (std::size_t i = 0; i + width <= bytes; i += width) std::reverse(p + i, p + i + width);
}

std::string errno_text(int err) { return std::strerror(err); }

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

[[noreturn]] void save_error(const std::string& path, const std::string& what, int err) {
  throw std::runtime_error("save_state: cannot write '" + path + "': " + what + ": " + errno_text(err));
}

// Temporaries are "<target>.tmp.<pid>.<n>": n counts the saves of this process, so two threads
// (or two processes) saving to one path never share a temporary, and a temporary names the
// process that wrote it.
std::string temp_prefix(const std::string& path) { return path + ".tmp."; }

std::string file_name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Removes the temporaries of `path` whose writer is gone (a process killed during a save leaves
// its temporary behind; nothing else ever removes it). A temporary of a live process, this one
// included, may belong to a save in progress and is left alone; so is any name that is not one
// of ours. Best effort: a temporary that cannot be removed is no error of this save.
void remove_stale_temporaries(const std::string& path) {
  const std::string dir = directory_of(path), prefix = file_name_of(temp_prefix(path));
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  const long self = static_cast<long>(::getpid());
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // "<pid>.<n>", both decimal.
    const std::string rest = name.substr(prefix.size());
    const auto dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size()) continue;
    if (rest.find_first_not_of("0123456789.") != std::string::npos || rest.find('.', dot + 1) != std::string::npos) continue;
    if (dot > 9) continue;  // not a pid
    const long pid = std::stol(rest.substr(0, dot));
    if (pid <= 0 || pid == self) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

std::atomic<std::uint64_t> g_save_serial{0};

// The temp file of one save: removed unless committed.
struct TempFile {
  std::string path;
  std::FILE* file = nullptr;
  bool committed = false;
  ~TempFile() {
    if (file != nullptr) std::fclose(file);
    if (!committed) ::unlink(path.c_str());
  }
};

class Writer {
 public:
  Writer(std::FILE* f, const std::string& target) : f_(f), target_(target) {}
  void write(const void* p, std::size_t n) {
    if (n == 0) return;
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(p), n);
    if (std::fwrite(p, 1, n, f_) != n) save_error(target_, "write failed", errno);
  }
  void write(const std::vector<unsigned char>& b) { write(b.data(), b.size()); }
  std::uint32_t crc() const { return static_cast<std::uint32_t>(crc_); }

 private:
  std::FILE* f_;
  const std::string& target_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
};

void write_tensor_data(Writer& w, const Tensor& t_in) {
  const Tensor t = detail::contiguous_copy_if_needed(t_in);  // a view saves its own elements
  const std::size_t width = dtype_size(t.dtype());
  const std::size_t bytes = static_cast<std::size_t>(t.numel()) * width;
  const void* src = detail::visit_dtype(t.dtype(), [&](auto tag) -> const void* {
    using T = typename decltype(tag)::type;
    return detail::flat<T>(t);
  });
  if constexpr (std::endian::native == std::endian::little) {
    w.write(src, bytes);
  } else {
    // Convert in bounded pieces so a big tensor needs no second full copy.
    constexpr std::size_t kPiece = std::size_t{1} << 20;
    std::vector<unsigned char> piece;
    const auto* p = static_cast<const unsigned char*>(src);
    for (std::size_t off = 0; off < bytes; off += kPiece) {
      const std::size_t n = std::min(kPiece, bytes - off);
      piece.assign(p + off, p + off + n);
      swap_elements(piece.data(), n, width);
      w.write(piece.data(), n);
    }
  }
}

}  // namespace

void save_state(const StateDict& state, const std::string& path) {
  for (const auto& [name, t] : state) {
    check(t.defined(), "save_state", "entry '", name, "' is an undefined tensor (nothing written to '", path, "')");
    check(name.size() <= std::numeric_limits<std::uint32_t>::max(), "save_state", "entry name too long");
  }
  remove_stale_temporaries(path);
  TempFile tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    // O_EXCL: a name left by an earlier process with our pid is skipped, never truncated.
    tmp.path = temp_prefix(path) + std::to_string(::getpid()) + "." + std::to_string(g_save_serial.fetch_add(1));
    fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && (errno != EEXIST || attempt >= 1000)) {
      const int err = errno;
      tmp.committed = true;  // nothing of ours to remove
      save_error(path, "cannot create temp file '" + tmp.path + "'", err);
    }
  }
  tmp.file = ::fdopen(fd, "wb");
  if (tmp.file == nullptr) {
    const int err = errno;
    ::close(fd);
    save_error(path, "fdopen of temp file failed", err);
  }

  Writer w(tmp.file, path);
  std::vector<unsigned char> head(kMagic, kMagic + 8);
  put_le<std::uint32_t>(head, kCheckpointFormatVersion);
  put_le<std::uint64_t>(head, static_cast<std::uint64_t>(state.size()));
  w.write(head);
  for (const auto& [name, t] : state) {
    std::vector<unsigned char> e;
    put_le<std::uint32_t>(e, static_cast<std::uint32_t>(name.size()));
    e.insert(e.end(), name.begin(), name.end());
    e.push_back(dtype_code(t.dtype()));
    const Shape shape = t.shape();
    put_le<std::uint32_t>(e, static_cast<std::uint32_t>(shape.size()));
    for (std::int64_t d : shape) put_le<std::uint64_t>(e, static_cast<std::uint64_t>(d));
    w.write(e);
    write_tensor_data(w, t);
  }
  std::vector<unsigned char> tail;
  put_le<std::uint32_t>(tail, w.crc());
  if (std::fwrite(tail.data(), 1, tail.size(), tmp.file) != tail.size()) save_error(path, "write failed", errno);

  if (std::fflush(tmp.file) != 0) save_error(path, "flush failed", errno);
  if (::fsync(::fileno(tmp.file)) != 0) save_error(path, "fsync failed", errno);
  std::FILE* f = tmp.file;
  tmp.file = nullptr;
  if (std::fclose(f) != 0) save_error(path, "close failed", errno);
  if (std::rename(tmp.path.c_str(), path.c_str()) != 0) save_error(path, "rename from '" + tmp.path + "' failed", errno);
  tmp.committed = true;

  // Make the rename itself durable. Some filesystems cannot fsync a directory (EINVAL): the file
  // is in place by then, so only real I/O errors are reported.
  const std::string dir = directory_of(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) save_error(path, "cannot open directory '" + dir + "' to fsync it", errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL && err != EROFS) save_error(path, "fsync of directory '" + dir + "' failed", err);
}

namespace {

[[noreturn]] void load_error(const std::string& path, const std::string& what) {
  throw std::runtime_error("load_state: '" + path + "': " + what);
}

// Reads the checksummed body, never past `body` bytes, updating the CRC as it goes.
class Reader {
 public:
  Reader(std::FILE* f, const std::string& path, std::uint64_t body, uLong crc)
      : f_(f), path_(path), remaining_(body), crc_(crc) {}

  [[noreturn]] void fail(const std::string& what) const { load_error(path_, what); }
  std::uint64_t remaining() const { return remaining_; }

  // Reads n bytes of the checksummed body; `what` names the field for the truncation message.
  void read(void* p, std::uint64_t n, const std::string& what) {
    if (n > remaining_) {
      std::ostringstream os;
      os << "truncated or corrupt file: " << what << " needs " << n << " bytes but only " << remaining_
         << " remain before the CRC";
      fail(os.str());
    }
    if (n == 0) return;
    if (std::fread(p, 1, static_cast<std::size_t>(n), f_) != n) {
      fail("read of " + what + " failed: " + (std::ferror(f_) ? errno_text(errno) : std::string("unexpected end of file")));
    }
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(p), static_cast<z_size_t>(n));
    remaining_ -= n;
  }
  template <class U>
  U read_le(const std::string& what) {
    unsigned char b[sizeof(U)];
    read(b, sizeof(U), what);
    return get_le<U>(b);
  }
  std::uint32_t crc() const { return static_cast<std::uint32_t>(crc_); }

 private:
  std::FILE* f_;
  const std::string& path_;
  std::uint64_t remaining_;
  uLong crc_;
};

struct FileCloser {
  std::FILE* f;
  ~FileCloser() {
    if (f != nullptr) std::fclose(f);
  }
};

}  // namespace

StateDict load_state(const std::string& path) {
  auto fail = [&](const std::string& what) { load_error(path, what); };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail("cannot open: " + errno_text(errno));
  FileCloser closer{f};
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0) fail("cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);

  // The magic is checked first so that "not a checkpoint at all" is told apart from "truncated".
  unsigned char magic[8] = {};
  const std::size_t got = std::fread(magic, 1, static_cast<std::size_t>(std::min<std::uint64_t>(8, size)), f);
  if (std::memcmp(magic, kMagic, got) != 0) fail("not a sorix checkpoint (bad magic; expected \"SORIXCKP\")");
  if (size < kMinFileSize) {
    fail("truncated file: " + std::to_string(size) + " bytes, shorter than the smallest checkpoint (" +
         std::to_string(kMinFileSize) + " bytes)");
  }
  if (got != 8) fail("read of the magic failed");

  // The magic is part of the checksummed bytes.
  Reader r(f, path, size - 8 - 4, crc32_z(crc32(0L, Z_NULL, 0), magic, 8));
  const auto version = r.read_le<std::uint32_t>("the format version");
  if (version != kCheckpointFormatVersion) {
    fail("unsupported format version " + std::to_string(version) + " (this build reads version " +
         std::to_string(kCheckpointFormatVersion) + ")");
  }
  const auto count = r.read_le<std::uint64_t>("the entry count");
  if (count > r.remaining() / kMinEntrySize) {
    fail("corrupt entry count " + std::to_string(count) + ": " + std::to_string(r.remaining()) +
         " bytes cannot hold that many entries");
  }

  std::vector<std::pair<std::string, Tensor>> entries;
  for (std::uint64_t k = 0; k < count; ++k) {
    const std::string which = "entry " + std::to_string(k);
    const auto name_len = r.read_le<std::uint32_t>("the name length of " + which);
    if (name_len > r.remaining()) {
      fail("corrupt name length " + std::to_string(name_len) + " of " + which + ": runs past the end of the file");
    }
    std::string name(name_len, '\0');
    r.read(name.data(), name_len, "the name of " + which);
    const std::string label = which + " ('" + name + "')";
    const auto code = r.read_le<std::uint8_t>("the dtype of " + label);
    Dtype dtype{};
    if (!dtype_from_code(code, dtype)) {
      fail("unknown dtype code " + std::to_string(code) + " in " + label + " (expected 0 float32, 1 float64, 2 int64, 3 bool, 4 uint8, 5 int32)");
    }
    const auto ndim = r.read_le<std::uint32_t>("the ndim of " + label);
    if (ndim > kMaxNdim) {
      fail("corrupt ndim " + std::to_string(ndim) + " in " + label + " (at most " + std::to_string(kMaxNdim) + ")");
    }
    Shape shape(ndim);
    // `span` is the product of the dims with zeros counted as 1: a tensor's strides, which must
    // fit even when a zero dim makes it empty ([0, 2^32, 2^32] is refused here, not wrapped later).
    std::uint64_t numel = 1, span = 1;
    bool overflow = false, has_zero = false;
    for (std::uint32_t d = 0; d < ndim; ++d) {
      shape[d] = static_cast<std::int64_t>(r.read_le<std::uint64_t>("dim " + std::to_string(d) + " of " + label));
      if (shape[d] < 0) fail("corrupt dim " + std::to_string(shape[d]) + " in " + label + " (negative)");
      has_zero = has_zero || shape[d] == 0;
      overflow = overflow || __builtin_mul_overflow(span, std::max<std::uint64_t>(static_cast<std::uint64_t>(shape[d]), 1), &span) ||
                 span > (std::uint64_t{1} << 60);
    }
    if (overflow) {
      fail("corrupt shape " + shape_string(shape) + " of " + label +
           ": its element count (not counting zero dims) overflows (more than 2^60)");
    }
    numel = has_zero ? 0 : span;
    const std::uint64_t width = dtype_size(dtype);
    std::uint64_t bytes = 0;
    overflow = __builtin_mul_overflow(numel, width, &bytes);
    if (overflow || bytes > r.remaining()) {
      fail("corrupt shape " + shape_string(shape) + " of " + label + ": its " + dtype_name(dtype) +
           " data runs past the end of the file (" + std::to_string(r.remaining()) + " bytes remain)");
    }
    Tensor t = empty(shape, dtype);
    void* dst = detail::visit_dtype(dtype, [&](auto tag) -> void* {
      using T = typename decltype(tag)::type;
      return detail::flat<T>(t);
    });
    r.read(dst, bytes, "the data of " + label);
    if constexpr (std::endian::native != std::endian::little) {
      swap_elements(static_cast<unsigned char*>(dst), static_cast<std::size_t>(bytes), static_cast<std::size_t>(width));
    }
    if (dtype == Dtype::Bool) {
      // A bool byte other than 0 or 1 is no bool value (reading it as one is undefined).
      const auto* b = static_cast<const unsigned char*>(dst);
      for (std::uint64_t i = 0; i < bytes; ++i) {
        if (b[i] > 1) fail("corrupt bool data in " + label + ": byte " + std::to_string(b[i]) + " at element " + std::to_string(i) + " (expected 0 or 1)");
      }
    }
    entries.emplace_back(std::move(name), std::move(t));
  }
  if (r.remaining() != 0) {
    fail("corrupt file: " + std::to_string(r.remaining()) + " unexpected bytes after the last entry");
  }
  unsigned char stored_crc[4];
  if (std::fread(stored_crc, 1, 4, f) != 4) fail("read of the CRC failed");
  const std::uint32_t computed = r.crc();
  const auto stored = get_le<std::uint32_t>(stored_crc);
  if (computed != stored) {
    std::ostringstream os;
    os << "CRC mismatch (stored 0x" << std::hex << stored << ", computed 0x" << computed
       << "): the file is corrupt";
    fail(os.str());
  }

  StateDict out;
  for (auto& [name, t] : entries) {
    if (out.contains(name)) fail("corrupt file: duplicate entry name '" + name + "'");
    out.insert(name, t);
  }
  return out;
}

}  // namespace sorix
