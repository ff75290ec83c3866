#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <streambuf>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace latte {
namespace {

// A stream buffer writing to a file descriptor with write(2), remembering the errno of the
// first failed write so the caller can report it. Writes at least as large as the buffer
// bypass it.
class FileDescriptorBuffer : public std::streambuf {
 public:
  explicit FileDescriptorBuffer(int fd) : fd_(fd), buffer_(size_t{1} << 20) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n <= 0) return 0;  // callers may pass a null pointer with no bytes
    if (n > epptr() - pptr()) {
      if (!flush_buffer()) return 0;
      if (n >= static_cast<std::streamsize>(buffer_.size())) {
        return write_all(s, static_cast<size_t>(n)) ? n : 0;
      }
    }
    std::memcpy(pptr(), s, static_cast<size_t>(n));
    pbump(static_cast<int>(n));
    return n;
  }

  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    const bool ok = write_all(pbase(), static_cast<size_t>(pptr() - pbase()));
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return ok;
  }

  bool write_all(const char* p, size_t n) {
    if (error_ != 0) return false;
    while (n > 0) {
      const ssize_t written = ::write(fd_, p, n);
      if (written < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return false;
      }
      p += written;
      n -= static_cast<size_t>(written);
    }
    return true;
  }

  int fd_;
  std::vector<char> buffer_;
  int error_ = 0;
};

// Owns the temporary file until it has been renamed: closes its descriptor and removes it
// when destroyed without commit().
class TemporaryFile {
 public:
  TemporaryFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Closes the descriptor; returns 0 or the errno of a failed close.
  int close() {
    const int result = ::close(std::exchange(fd_, -1));
    return result == 0 ? 0 : errno;
  }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  int fd_;
  bool committed_ = false;
};

[[noreturn]] void fail(const std::string& path, const std::string& action, int error) {
  LATTE_FAIL() << "write_file_atomically: '" << path << "': " << action << ": "
               << std::strerror(error);
}

// Flushes the directory entry of a renamed file to disk. Filesystems that cannot sync a
// directory answer EINVAL; there is nothing more to do on those.
void sync_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string directory = parent.empty() ? std::string(".") : parent.string();
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    fail(path, "cannot open directory '" + directory + "' to sync it", error);
  }
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0 && error != EINVAL)
    fail(path, "cannot sync directory '" + directory + "'", error);
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write_contents) {
  const std::string temp_path = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error = errno;
    fail(path, "cannot create '" + temp_path + "'", error);
  }
  TemporaryFile temp(temp_path, fd);
  {
    FileDescriptorBuffer buffer(temp.fd());
    std::ostream out(&buffer);
    write_contents(out);
    out.flush();
    if (buffer.error() != 0) fail(path, "cannot write '" + temp_path + "'", buffer.error());
    LATTE_CHECK(out.good()) << "write_file_atomically: '" << path
                            << "': the output stream failed while writing '" << temp_path << "'";
  }
  if (::fsync(temp.fd()) != 0) {
    const int error = errno;
    fail(path, "cannot sync '" + temp_path + "'", error);
  }
  const int close_error = temp.close();
  if (close_error != 0) fail(path, "cannot close '" + temp_path + "'", close_error);
  if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
    const int error = errno;
    fail(path, "cannot rename '" + temp_path + "' over it", error);
  }
  temp.commit();
  sync_directory(path);
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  write_file_atomically(path, [contents](std::ostream& out) {
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  });
}

}  // namespace latte
