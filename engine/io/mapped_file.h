// MappedFile: a read-only memory map of a whole file (RAII, movable, not copyable).
#pragma once

#include <cstddef>
#include <string>

namespace latte {

class MappedFile {
 public:
  // Maps the regular file at `path` read-only. Throws latte::Error naming the path and the
  // system error when it cannot be opened, is not a regular file, or cannot be mapped.
  static MappedFile open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // The file's bytes; nullptr for an empty file. The address does not change when moved.
  const std::byte* data() const { return static_cast<const std::byte*>(address_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, void* address, size_t size);
  void unmap() noexcept;

  std::string path_;
  void* address_ = nullptr;
  size_t size_ = 0;
};

}  // namespace latte
