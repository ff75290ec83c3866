// Reading and writing safetensors files on raw bytes (no Tensor type involved).
// Format: an 8-byte little-endian uint64 header length N, N bytes of UTF-8 JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the data buffer; offsets are relative to its start, data is little-endian.
// Supported dtypes are those of engine/dtype.h: F32, F64, BF16, I32, I64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/dtype.h"
#include "engine/io/mapped_file.h"

namespace latte {

// One tensor of an open file. `data` points into the file's memory map and is not necessarily
// aligned for `dtype`: copy it out with memcpy.
struct SafetensorsView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const std::byte* data;
  size_t nbytes;
};

// A memory-mapped safetensors file, validated completely when opened. Views stay valid while
// the reader (or the reader it was moved into) lives.
class SafetensorsReader {
 public:
  // Throws latte::Error naming the file (and the tensor, where there is one) when the file
  // cannot be read or does not follow the format.
  static SafetensorsReader open(const std::string& path);

  // In order of data offset (then name, for zero-size tensors at the same offset).
  const std::vector<SafetensorsView>& tensors() const { return tensors_; }
  // nullptr when the file holds no tensor of that name.
  const SafetensorsView* find(const std::string& name) const;
  // Throws latte::Error naming the file and the tensor when absent.
  const SafetensorsView& at(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_.path(); }

 private:
  explicit SafetensorsReader(MappedFile file);

  MappedFile file_;
  std::vector<SafetensorsView> tensors_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: `nbytes` bytes of little-endian data at `data`.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};

// Writes the tensors, in the given order, and the metadata to `path` atomically (see
// engine/io/atomic_file.h). The header is padded with spaces to a multiple of 8 bytes.
// Throws latte::Error naming the tensor when a name is repeated, reserved ("__metadata__") or
// not UTF-8, a dim is negative, or nbytes != prod(shape) * dtype_size(dtype).
void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace latte
