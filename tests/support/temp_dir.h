// TempDir: a fresh directory under the system temp directory, removed with everything in it
// when the object goes away (after giving its owner back full permission on it); file() names a
// path inside it and write() puts a file there (creating sub-directories).
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace latte::test {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("latte_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ignored);
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }

  // The full path of `relative` inside the directory.
  std::string file(const std::string& relative) const { return (path_ / relative).string(); }

  // Writes `text` to `relative` inside the directory and returns the full path.
  std::string write(const std::string& relative, const std::string& text) const {
    const std::filesystem::path full = path_ / relative;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream out(full, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("TempDir: cannot write " + full.string());
    return full.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace latte::test
