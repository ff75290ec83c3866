// Token-id text files (the `latte forward` input): one sequence per line, ids separated by
// whitespace, every line the same length. Blank lines are ignored.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace latte {

// An i32 tensor [sequences, length]. Errors name the file and line: non-integer or negative
// ids, lines of different lengths, an empty file, ids >= vocab_size (when vocab_size > 0).
Tensor read_token_text(const std::string& path, int64_t vocab_size);

}  // namespace latte
