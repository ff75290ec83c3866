#include "engine/io/token_text.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "engine/error.h"

namespace latte {

Tensor read_token_text(const std::string& path, int64_t vocab_size) {
  std::ifstream in(path);
  LATTE_CHECK(in.good()) << path << ": cannot open (" << std::strerror(errno) << ")";
  std::vector<int32_t> ids;
  int64_t length = -1, rows = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream fields(line);
    std::string field;
    int64_t count = 0;
    while (fields >> field) {
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(field.c_str(), &end, 10);
      LATTE_CHECK(*end == '\0' && errno == 0 && v >= 0 && v <= INT32_MAX)
          << path << ":" << line_no << ": '" << field
          << "' is not a token id (a non-negative integer)";
      LATTE_CHECK(vocab_size <= 0 || v < vocab_size)
          << path << ":" << line_no << ": token id " << v
          << " is not below model.vocab_size = " << vocab_size;
      ids.push_back(static_cast<int32_t>(v));
      ++count;
    }
    if (count == 0) continue;
    LATTE_CHECK(length < 0 || count == length)
        << path << ":" << line_no << ": sequence has " << count << " tokens, earlier lines have "
        << length << " (all sequences must have the same length)";
    length = count;
    ++rows;
  }
  LATTE_CHECK(rows > 0) << path << ": no token sequences found";
  return Tensor::from_vector(ids, {rows, length});
}

}  // namespace latte
