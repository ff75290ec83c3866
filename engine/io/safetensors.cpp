#include "engine/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include "engine/error.h"
#include "engine/io/atomic_file.h"

namespace latte {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores the header length and the data little-endian; latte reads and "
              "writes them in place, which needs a little-endian host");

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the Hugging Face library's limit
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr DType kAllDTypes[] = {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64};

// Offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode 15,
// table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or npos.
size_t find_invalid_utf8(std::string_view text) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char second_min = 0x80, second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_min = 0xA0;  // overlong below U+0800
      if (lead == 0xED) second_max = 0x9F;  // surrogates U+D800..U+DFFF
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_min = 0x90;  // overlong below U+10000
      if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (n - i < length) return i;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < second_min || second > second_max) return i;
    for (size_t k = 2; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

// Empty for valid UTF-8; otherwise names the first bad byte and its offset.
std::string utf8_problem(std::string_view text) {
  const size_t bad = find_invalid_utf8(text);
  if (bad == std::string_view::npos) return "";
  std::ostringstream message;
  message << "byte 0x" << std::hex << std::setw(2) << std::setfill('0')
          << static_cast<int>(static_cast<unsigned char>(text[bad])) << std::dec << " at offset "
          << bad;
  return message.str();
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : kAllDTypes) {
    if (name == dtype_name(t)) return t;
  }
  return std::nullopt;
}

std::string supported_dtype_names() {
  std::string names;
  for (DType t : kAllDTypes) names += std::string(names.empty() ? "" : ", ") + dtype_name(t);
  return names;
}

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// prod(shape) * element_size for non-negative dims; nullopt when it overflows 64 bits.
std::optional<uint64_t> shape_nbytes(const std::vector<int64_t>& shape, size_t element_size) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t total = element_size;
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(total, static_cast<uint64_t>(dim), &total)) return std::nullopt;
  }
  return total;
}

// A JSON value that must be a non-negative integer; `what` names it in the error.
uint64_t non_negative_integer(const nlohmann::json& value, const std::string& what) {
  LATTE_CHECK(value.is_number_unsigned())
      << what << " is " << value.dump() << ", expected a non-negative integer";
  return value.get<uint64_t>();
}

}  // namespace

SafetensorsReader SafetensorsReader::open(const std::string& path) {
  return SafetensorsReader(MappedFile::open(path));
}

SafetensorsReader::SafetensorsReader(MappedFile file) : file_(std::move(file)) {
  const std::string where = "safetensors: '" + file_.path() + "': ";
  const size_t file_size = file_.size();
  LATTE_CHECK(file_size >= 8) << where << "file is " << file_size
                              << " bytes, shorter than the 8-byte header length";
  uint64_t header_size = 0;
  std::memcpy(&header_size, file_.data(), 8);
  LATTE_CHECK(header_size <= kMaxHeaderBytes)
      << where << "header length " << header_size << " exceeds the limit of " << kMaxHeaderBytes
      << " bytes (not a safetensors file?)";
  LATTE_CHECK(header_size <= file_size - 8)
      << where << "header length " << header_size << " but only " << file_size - 8
      << " bytes follow the length field (truncated header)";

  const std::string_view header_text(reinterpret_cast<const char*>(file_.data()) + 8,
                                     static_cast<size_t>(header_size));
  const std::string header_problem = utf8_problem(header_text);
  LATTE_CHECK(header_problem.empty()) << where << "header is not valid UTF-8: " << header_problem;

  // nlohmann::json keeps the last of repeated keys silently; record repeats of top-level keys.
  std::set<std::string> keys;
  std::string repeated_key;
  const nlohmann::json::parser_callback_t note_repeated_keys =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (event == nlohmann::json::parse_event_t::key && depth == 1 &&
            !keys.insert(parsed.get<std::string>()).second && repeated_key.empty()) {
          repeated_key = parsed.get<std::string>();
        }
        return true;
      };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text.begin(), header_text.end(), note_repeated_keys);
  } catch (const nlohmann::json::exception& e) {
    LATTE_FAIL() << where << "header is not valid JSON: " << e.what();
  }
  LATTE_CHECK(header.is_object()) << where << "header is a JSON " << header.type_name()
                                  << ", expected a JSON object";
  LATTE_CHECK(repeated_key.empty()) << where << "header key '" << repeated_key << "' appears twice";

  const std::byte* buffer = file_.data() + 8 + header_size;
  const uint64_t buffer_size = file_size - 8 - header_size;
  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      LATTE_CHECK(entry.is_object()) << where << "__metadata__ is a JSON " << entry.type_name()
                                     << ", expected an object of strings";
      for (const auto& [key, value] : entry.items()) {
        LATTE_CHECK(value.is_string()) << where << "metadata value of '" << key << "' is "
                                       << value.dump() << ", expected a string";
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string tensor_where = where + "tensor '" + name + "': ";
    LATTE_CHECK(entry.is_object()) << tensor_where << "entry is a JSON " << entry.type_name()
                                   << ", expected an object with dtype, shape and data_offsets";
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      LATTE_CHECK(entry.contains(field)) << tensor_where << "entry has no '" << field << "'";
    }
    const nlohmann::json& dtype_json = entry.at("dtype");
    const nlohmann::json& shape_json = entry.at("shape");
    const nlohmann::json& offsets_json = entry.at("data_offsets");
    LATTE_CHECK(dtype_json.is_string())
        << tensor_where << "dtype is " << dtype_json.dump() << ", expected a string";
    const std::optional<DType> dtype = dtype_from_name(dtype_json.get<std::string>());
    LATTE_CHECK(dtype.has_value()) << tensor_where << "unsupported dtype " << dtype_json.dump()
                                   << " (supported: " << supported_dtype_names() << ")";
    LATTE_CHECK(shape_json.is_array())
        << tensor_where << "shape is " << shape_json.dump() << ", expected an array of integers";
    std::vector<int64_t> shape;
    for (const nlohmann::json& dim : shape_json) {
      const uint64_t value = non_negative_integer(dim, tensor_where + "shape dim");
      LATTE_CHECK(value <= static_cast<uint64_t>(INT64_MAX))
          << tensor_where << "shape dim " << value << " is too large";
      shape.push_back(static_cast<int64_t>(value));
    }
    LATTE_CHECK(offsets_json.is_array() && offsets_json.size() == 2)
        << tensor_where << "data_offsets is " << offsets_json.dump() << ", expected [begin, end]";
    const uint64_t begin =
        non_negative_integer(offsets_json[0], tensor_where + "data_offsets begin");
    const uint64_t end = non_negative_integer(offsets_json[1], tensor_where + "data_offsets end");
    LATTE_CHECK(begin <= end) << tensor_where << "data_offsets [" << begin << ", " << end
                              << "] end before begin";
    LATTE_CHECK(end <= buffer_size)
        << tensor_where << "data_offsets [" << begin << ", " << end
        << "] extend beyond the data buffer of " << buffer_size << " bytes (truncated data)";
    const std::optional<uint64_t> expected = shape_nbytes(shape, dtype_size(*dtype));
    LATTE_CHECK(expected.has_value())
        << tensor_where << "shape " << format_shape(shape) << " overflows";
    LATTE_CHECK(end - begin == *expected)
        << tensor_where << "data_offsets [" << begin << ", " << end << "] hold " << end - begin
        << " bytes, expected " << *expected << " for shape " << format_shape(shape) << " of "
        << dtype_name(*dtype);
    tensors_.push_back(SafetensorsView{name, *dtype, std::move(shape), buffer + begin,
                                       static_cast<size_t>(end - begin)});
  }

  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsView& a, const SafetensorsView& b) {
              return std::tie(a.data, a.nbytes, a.name) < std::tie(b.data, b.nbytes, b.name);
            });
  // Sorted by begin, a non-empty tensor overlaps an earlier one exactly when it begins before
  // the farthest end seen so far.
  const SafetensorsView* farthest = nullptr;
  for (const SafetensorsView& t : tensors_) {
    if (t.nbytes == 0) continue;
    if (farthest != nullptr) {
      const auto range = [&](const SafetensorsView& v) {
        return "[" + std::to_string(v.data - buffer) + ", " +
               std::to_string(v.data - buffer + static_cast<ptrdiff_t>(v.nbytes)) + ")";
      };
      LATTE_CHECK(t.data >= farthest->data + farthest->nbytes)
          << where << "tensors '" << farthest->name << "' " << range(*farthest) << " and '"
          << t.name << "' " << range(t) << " overlap";
    }
    if (farthest == nullptr || t.data + t.nbytes > farthest->data + farthest->nbytes) farthest = &t;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsView* SafetensorsReader::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsView& SafetensorsReader::at(const std::string& name) const {
  const SafetensorsView* view = find(name);
  LATTE_CHECK(view != nullptr) << "safetensors: '" << path() << "': no tensor named '" << name
                               << "' (the file holds " << tensors_.size() << " tensors)";
  return *view;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = "write_safetensors: '" + path + "': ";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    for (const auto& [key, value] : metadata) {
      const std::string key_problem = utf8_problem(key);
      LATTE_CHECK(key_problem.empty())
          << where << "metadata key '" << key.substr(0, find_invalid_utf8(key))
          << "...' is not valid UTF-8: " << key_problem;
      const std::string value_problem = utf8_problem(value);
      LATTE_CHECK(value_problem.empty())
          << where << "metadata value of '" << key << "' is not valid UTF-8: " << value_problem;
    }
    header[kMetadataKey] = metadata;
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const SafetensorsEntry& t : tensors) {
    const std::string name_problem = utf8_problem(t.name);
    LATTE_CHECK(name_problem.empty())
        << where << "tensor name '" << t.name.substr(0, find_invalid_utf8(t.name))
        << "...' is not valid UTF-8: " << name_problem;
    const std::string tensor_where = where + "tensor '" + t.name + "': ";
    LATTE_CHECK(t.name != kMetadataKey) << tensor_where << "the name is reserved for metadata";
    LATTE_CHECK(names.insert(t.name).second) << tensor_where << "the name appears twice";
    for (int64_t dim : t.shape) {
      LATTE_CHECK(dim >= 0) << tensor_where << "shape " << format_shape(t.shape)
                            << " has a negative dim";
    }
    const std::optional<uint64_t> expected = shape_nbytes(t.shape, dtype_size(t.dtype));
    LATTE_CHECK(expected.has_value())
        << tensor_where << "shape " << format_shape(t.shape) << " overflows";
    LATTE_CHECK(t.nbytes == *expected)
        << tensor_where << "nbytes is " << t.nbytes << ", expected " << *expected << " for shape "
        << format_shape(t.shape) << " of " << dtype_name(t.dtype);
    LATTE_CHECK(t.data != nullptr || t.nbytes == 0) << tensor_where << "data is null";
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + t.nbytes});
    header[t.name] = std::move(entry);
    offset += t.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  write_file_atomically(path, [&](std::ostream& out) {
    const uint64_t header_size = text.size();
    char length[8];
    std::memcpy(length, &header_size, 8);
    out.write(length, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const SafetensorsEntry& t : tensors) {
      out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
    }
  });
}

}  // namespace latte
