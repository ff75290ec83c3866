// Atomic file replacement: readers of `path` see either its old content or the complete new
// content, never a partial file. The content goes to "<path>.tmp.<pid>", which is fsynced,
// renamed over `path`, and then the directory is fsynced so the rename survives a crash.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace latte {

// Writes the file through `write_contents`. On any failure (including an exception thrown by
// `write_contents` or a failed stream) the temporary file is removed and `path` is left as it
// was; system errors throw latte::Error naming the path and the error, and an exception from
// `write_contents` propagates unchanged.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write_contents);

void write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace latte
