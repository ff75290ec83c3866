// Tests of engine/io/atomic_file: complete replacement, no temporary file left behind, and
// the old file untouched on every kind of failure (missing directory, write error, rename
// error, a throwing or failing writer).
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/io/atomic_file.h"
#include "support/read_file.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using latte::test::read_file;
using latte::test::TempDir;

// Names of the entries of `dir`, sorted.
std::vector<std::string> entries(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string temp_name(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

// Limits the size of files this process may write, with SIGXFSZ ignored so that writes past
// the limit fail with EFBIG instead of killing the process; restores both on destruction.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = saved_;
    limited.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = nullptr;
};

}  // namespace

TEST_CASE("write_file_atomically creates and completely replaces a file, leaving no temp file") {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  latte::write_file_atomically(path, std::string_view("first version, rather long\n"));
  CHECK(read_file(path) == "first version, rather long\n");
  latte::write_file_atomically(path, std::string_view("short"));
  CHECK(read_file(path) == "short");  // no tail of the longer old content
  latte::write_file_atomically(path, std::string_view(""));
  CHECK(read_file(path).empty());
  CHECK(entries(dir) == std::vector<std::string>{"out.txt"});
}

TEST_CASE("write_file_atomically streams large content through the callback exactly") {
  TempDir dir;
  const std::string path = dir.file("big.bin");
  // 3 MiB of block writes (larger than any internal buffer) interleaved with single bytes.
  std::string expected;
  const std::string block(size_t{3} << 20, 'x');
  latte::write_file_atomically(path, [&](std::ostream& out) {
    for (int i = 0; i < 3; ++i) {
      out.put(static_cast<char>('a' + i));
      out.write(block.data(), static_cast<std::streamsize>(block.size()) / (i + 1));
      out << i << '\n';
    }
  });
  for (int i = 0; i < 3; ++i) {
    expected += static_cast<char>('a' + i);
    expected += block.substr(0, block.size() / (i + 1));
    expected += std::to_string(i) + "\n";
  }
  CHECK(read_file(path) == expected);
  CHECK(entries(dir) == std::vector<std::string>{"big.bin"});
}

TEST_CASE("write_file_atomically writes to <path>.tmp.<pid> while the old file stays readable") {
  TempDir dir;
  const std::string path = dir.file("state.txt");
  latte::write_file_atomically(path, std::string_view("old"));
  latte::write_file_atomically(path, [&](std::ostream& out) {
    out << "new";
    CHECK(fs::exists(temp_name(path)));
    CHECK(read_file(path) == "old");
  });
  CHECK(read_file(path) == "new");
  CHECK_FALSE(fs::exists(temp_name(path)));
}

TEST_CASE("write_file_atomically into a missing or non-directory parent throws naming the path") {
  TempDir dir;
  const std::string missing = dir.file("no-such-dir/out.txt");
  CHECK_THROWS_WITH_AS(latte::write_file_atomically(missing, std::string_view("x")),
                       doctest::Contains(("'" + missing + "': cannot create '" +
                                          temp_name(missing) + "': No such file or directory")
                                             .c_str()),
                       latte::Error);
  const std::string file = dir.file("a-file");
  latte::write_file_atomically(file, std::string_view("keep"));
  const std::string under_file = file + "/out.txt";
  CHECK_THROWS_WITH_AS(latte::write_file_atomically(under_file, std::string_view("x")),
                       doctest::Contains(("'" + under_file + "': cannot create '" +
                                          temp_name(under_file) + "': Not a directory")
                                             .c_str()),
                       latte::Error);
  CHECK(read_file(file) == "keep");
  CHECK(entries(dir) == std::vector<std::string>{"a-file"});
}

TEST_CASE("write_file_atomically into an unwritable directory leaves the existing file") {
  if (::geteuid() == 0) {
    // Permission bits do not bind root; the rename and write failures below cover the same
    // path through the code for every user.
    MESSAGE("skipped: running as root, a read-only directory is still writable");
    return;
  }
  TempDir dir;
  const std::string path = dir.file("kept.txt");
  latte::write_file_atomically(path, std::string_view("old content"));
  fs::permissions(dir.path(),
                  fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  CHECK_THROWS_WITH_AS(latte::write_file_atomically(path, std::string_view("new")),
                       doctest::Contains("Permission denied"), latte::Error);
  fs::permissions(dir.path(), fs::perms::owner_all, fs::perm_options::add);
  CHECK(read_file(path) == "old content");
  CHECK(entries(dir) == std::vector<std::string>{"kept.txt"});
}

TEST_CASE("write_file_atomically over a directory fails at the rename and removes the temp") {
  TempDir dir;
  const std::string path = dir.file("a-directory");
  fs::create_directory(path);
  latte::write_file_atomically(dir.file("a-directory/inside.txt"), std::string_view("inside"));
  CHECK_THROWS_WITH_AS(latte::write_file_atomically(path, std::string_view("x")),
                       doctest::Contains(("'" + path + "': cannot rename").c_str()), latte::Error);
  CHECK(fs::is_directory(path));
  CHECK(read_file(dir.file("a-directory/inside.txt")) == "inside");
  CHECK(entries(dir) == std::vector<std::string>{"a-directory"});
}

TEST_CASE("write_file_atomically reports a failed write and keeps the old file") {
  TempDir dir;
  const std::string path = dir.file("limited.bin");
  latte::write_file_atomically(path, std::string_view("old content"));
  const std::string big(size_t{2} << 20, 'z');
  std::string message;
  {
    const FileSizeLimit limit(4096);  // far below the 2 MiB written below
    try {
      latte::write_file_atomically(path, std::string_view(big));
    } catch (const latte::Error& e) {
      message = e.what();
    }
  }
  CHECK(message.find("': cannot write '" + temp_name(path) + "': File too large") !=
        std::string::npos);
  CHECK(read_file(path) == "old content");
  CHECK(entries(dir) == std::vector<std::string>{"limited.bin"});
}

TEST_CASE("a writer that throws or fails its stream leaves the old file and no temp file") {
  TempDir dir;
  const std::string path = dir.file("model.bin");
  latte::write_file_atomically(path, std::string_view("old content"));

  // The writer's own exception propagates unchanged.
  CHECK_THROWS_WITH_AS(latte::write_file_atomically(path,
                                                    [](std::ostream& out) {
                                                      out << std::string(100000, 'p');
                                                      throw std::invalid_argument("writer broke");
                                                    }),
                       "writer broke", std::invalid_argument);
  CHECK(read_file(path) == "old content");
  CHECK(entries(dir) == std::vector<std::string>{"model.bin"});

  CHECK_THROWS_WITH_AS(latte::write_file_atomically(path,
                                                    [](std::ostream& out) {
                                                      out << "partial";
                                                      out.setstate(std::ios::failbit);
                                                    }),
                       doctest::Contains(("'" + path + "': the output stream failed").c_str()),
                       latte::Error);
  CHECK(read_file(path) == "old content");
  CHECK(entries(dir) == std::vector<std::string>{"model.bin"});
}
