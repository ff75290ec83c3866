#include "engine/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/error.h"

namespace latte {

MappedFile MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    LATTE_FAIL() << "MappedFile: cannot open '" << path << "': " << std::strerror(error);
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    LATTE_FAIL() << "MappedFile: cannot stat '" << path << "': " << std::strerror(error);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    LATTE_FAIL() << "MappedFile: '" << path << "' is not a regular file";
  }
  const size_t size = static_cast<size_t>(info.st_size);
  void* address = nullptr;
  if (size > 0) {
    address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      LATTE_FAIL() << "MappedFile: cannot map '" << path << "' (" << size
                   << " bytes): " << std::strerror(error);
    }
  }
  ::close(fd);  // the mapping keeps the file referenced
  return MappedFile(path, address, size);
}

MappedFile::MappedFile(std::string path, void* address, size_t size)
    : path_(std::move(path)), address_(address), size_(size) {}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      address_(std::exchange(other.address_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  unmap();
}

void MappedFile::unmap() noexcept {
  if (address_ != nullptr) ::munmap(address_, size_);
  address_ = nullptr;
  size_ = 0;
}

}  // namespace latte
