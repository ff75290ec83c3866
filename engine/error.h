// latte::Error and LATTE_CHECK: one exception type whose message names the op, file or key at
// fault and the values involved. `LATTE_CHECK(a == b) << "op: got " << a;` throws when false.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace latte {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// Collects a message with operator<< and throws latte::Error when destroyed.
class ErrorBuilder {
 public:
  ErrorBuilder() = default;
  ErrorBuilder(const ErrorBuilder&) = delete;
  ErrorBuilder& operator=(const ErrorBuilder&) = delete;
  [[noreturn]] ~ErrorBuilder() noexcept(false) { throw Error(stream_.str()); }
  template <typename T>
  ErrorBuilder& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};
}  // namespace detail

}  // namespace latte

// Throws latte::Error with the streamed message when `cond` is false.
#define LATTE_CHECK(cond) \
  if (cond) {             \
  } else                  \
    ::latte::detail::ErrorBuilder()

// Throws latte::Error unconditionally with the streamed message.
#define LATTE_FAIL() ::latte::detail::ErrorBuilder()
