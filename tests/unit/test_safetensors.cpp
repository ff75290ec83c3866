// Tests of engine/io/safetensors and engine/io/mapped_file: round trips of every dtype, a file
// built byte by byte from the format description, the writer's exact bytes, and one test per
// kind of malformed file.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/io/mapped_file.h"
#include "engine/io/safetensors.h"
#include "support/read_file.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using latte::test::read_file;
using latte::test::TempDir;

// The 8-byte little-endian header length, composed byte by byte (independent of host order).
std::string length_prefix(uint64_t n) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return bytes;
}

// A file as the format describes it: length, header, data.
std::string file_bytes(const std::string& header, const std::string& data) {
  return length_prefix(header.size()) + header + data;
}

std::string as_bytes(const void* data, size_t nbytes) {
  return std::string(static_cast<const char*>(data), nbytes);
}

std::string view_bytes(const latte::SafetensorsView& view) {
  return as_bytes(view.data, view.nbytes);
}

}  // namespace

TEST_CASE("MappedFile maps a file's bytes, an empty file to size 0, and names bad paths") {
  TempDir dir;
  const std::string path = dir.write("bytes.bin", std::string("\x00\x01\xfe\xff latte", 10));
  latte::MappedFile file = latte::MappedFile::open(path);
  CHECK(file.size() == 10);
  CHECK(file.path() == path);
  CHECK(as_bytes(file.data(), file.size()) == std::string("\x00\x01\xfe\xff latte", 10));

  const std::byte* address = file.data();
  latte::MappedFile moved = std::move(file);
  CHECK(moved.data() == address);
  CHECK(moved.size() == 10);
  CHECK(file.size() == 0);  // a moved-from map is empty

  dir.write("empty.bin", "");
  CHECK(latte::MappedFile::open(dir.file("empty.bin")).size() == 0);

  CHECK_THROWS_WITH_AS(latte::MappedFile::open(dir.file("missing.bin")),
                       doctest::Contains("missing.bin': No such file or directory"), latte::Error);
  CHECK_THROWS_WITH_AS(latte::MappedFile::open(dir.file("")),
                       doctest::Contains("is not a regular file"), latte::Error);
}

TEST_CASE("safetensors round trip of every dtype, a scalar, a zero-size tensor and metadata") {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  const std::vector<float> f32 = {1.5f, -2.25f, 3e-8f, 1e30f, -0.0f, 7.0f};
  const std::vector<double> f64 = {3.141592653589793, -1e-300, 2.5, 1e300};
  const std::vector<latte::bf16> bf16 = {latte::float_to_bf16(1.0f), latte::float_to_bf16(-3.5f),
                                         latte::float_to_bf16(1e-3f)};
  const std::vector<int32_t> i32 = {0, -1, 2147483647, -2147483647 - 1, 42};
  const int64_t i64_scalar = -9000000000000000001;
  const std::vector<latte::SafetensorsEntry> entries = {
      {"model.f32", latte::DType::F32, {2, 3}, f32.data(), f32.size() * 4},
      {"model.f64", latte::DType::F64, {4}, f64.data(), f64.size() * 8},
      {"model.empty", latte::DType::F32, {0, 4}, nullptr, 0},
      {"model.bf16", latte::DType::BF16, {3, 1}, bf16.data(), bf16.size() * 2},
      {"model.i32", latte::DType::I32, {5}, i32.data(), i32.size() * 4},
      {"model.i64_scalar", latte::DType::I64, {}, &i64_scalar, 8},
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "température ✓, \"quoted\"\n\\"}, {"step", "120"}};
  latte::write_safetensors(path, entries, metadata);

  const latte::SafetensorsReader reader = latte::SafetensorsReader::open(path);
  CHECK(reader.path() == path);
  CHECK(reader.metadata() == metadata);
  REQUIRE(reader.tensors().size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const latte::SafetensorsEntry& entry = entries[i];
    CAPTURE(entry.name);
    const latte::SafetensorsView& view = reader.tensors()[i];  // written order = offset order
    CHECK(view.name == entry.name);
    CHECK(view.dtype == entry.dtype);
    CHECK(view.shape == entry.shape);
    CHECK(view.nbytes == entry.nbytes);
    CHECK(view_bytes(view) == as_bytes(entry.data, entry.nbytes));
    CHECK(reader.find(entry.name) == &view);
    CHECK(&reader.at(entry.name) == &view);
  }
  CHECK(reader.find("model.absent") == nullptr);
  CHECK_THROWS_WITH_AS(reader.at("model.absent"),
                       doctest::Contains("all.safetensors': no tensor named 'model.absent'"),
                       latte::Error);
  // Values, not only bytes: a scalar is one element.
  int64_t scalar = 0;
  std::memcpy(&scalar, reader.at("model.i64_scalar").data, 8);
  CHECK(scalar == i64_scalar);
}

TEST_CASE("safetensors round trip of many tensors keeps the given layout order") {
  TempDir dir;
  const std::string path = dir.file("many.safetensors");
  constexpr int kCount = 300;
  std::vector<std::vector<float>> values(kCount);
  std::vector<latte::SafetensorsEntry> entries;
  for (int i = 0; i < kCount; ++i) {
    const int n = 1 + (i * 7) % 13;  // varied sizes
    for (int k = 0; k < n; ++k) values[i].push_back(static_cast<float>(i * 1000 + k) * 0.5f);
    // Names in reverse alphabetical order: the layout must follow the given order.
    entries.push_back({"layers." + std::to_string(1000 - i) + ".weight",
                       latte::DType::F32,
                       {n},
                       values[i].data(),
                       values[i].size() * sizeof(float)});
  }
  latte::write_safetensors(path, entries);

  const latte::SafetensorsReader reader = latte::SafetensorsReader::open(path);
  CHECK(reader.metadata().empty());
  REQUIRE(reader.tensors().size() == kCount);
  const std::byte* previous_end = nullptr;
  for (int i = 0; i < kCount; ++i) {
    const latte::SafetensorsView& view = reader.tensors()[i];
    CAPTURE(i);
    CHECK(view.name == entries[i].name);
    CHECK(view.shape == entries[i].shape);
    CHECK(view_bytes(view) == as_bytes(values[i].data(), entries[i].nbytes));
    if (previous_end != nullptr) CHECK(view.data == previous_end);  // packed back to back
    previous_end = view.data + view.nbytes;
  }
}

TEST_CASE("write_safetensors produces exactly the bytes the format describes") {
  TempDir dir;
  const std::string path = dir.file("exact.safetensors");
  const float values[2] = {1.0f, -2.0f};
  const int32_t index = 5;
  latte::write_safetensors(
      path, {{"w", latte::DType::F32, {2}, values, 8}, {"i", latte::DType::I32, {1}, &index, 4}},
      {{"k", "v"}});
  const std::string bytes = read_file(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  REQUIRE(bytes.size() == 8 + n + 12);
  const std::string header = bytes.substr(8, n);
  const size_t json_end = header.find_last_not_of(' ') + 1;
  CHECK(json_end + 8 > n);  // padding is spaces only, fewer than 8
  CHECK(nlohmann::json::parse(header) == nlohmann::json::parse(R"({"__metadata__": {"k": "v"},
                                  "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "i": {"dtype": "I32", "shape": [1], "data_offsets": [8, 12]}})"));
  // 1.0f = 0x3f800000, -2.0f = 0xc0000000, 5 = 0x00000005, each little-endian.
  CHECK(bytes.substr(8 + n) == std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x05\x00\x00\x00", 12));

  // No tensors: "{}" padded to 8 bytes.
  latte::write_safetensors(dir.file("none.safetensors"), {});
  CHECK(read_file(dir.file("none.safetensors")) == length_prefix(8) + "{}      ");
  CHECK(latte::SafetensorsReader::open(dir.file("none.safetensors")).tensors().empty());
}

TEST_CASE("SafetensorsReader reads a file built byte by byte from the format description") {
  TempDir dir;
  // Listed out of offset order, a scalar, a zero-size tensor sitting inside another's range
  // (empty ranges overlap nothing), metadata, and space padding.
  std::string header =
      R"({"b":{"dtype":"I32","shape":[2],"data_offsets":[2,10]},)"
      R"("z":{"dtype":"F64","shape":[3,0],"data_offsets":[4,4]},)"
      R"("a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},"__metadata__":{"format":"pt"}})";
  REQUIRE(header.size() % 8 != 0);  // so the padding below is exercised
  while (header.size() % 8 != 0) header += ' ';
  // bf16 1.0 = 0x3f80; int32 7 and -2; all little-endian.
  const std::string data("\x80\x3f\x07\x00\x00\x00\xfe\xff\xff\xff", 10);
  const std::string path = dir.write("by_hand.safetensors", file_bytes(header, data));

  latte::SafetensorsReader reader = latte::SafetensorsReader::open(path);
  CHECK(reader.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(reader.tensors().size() == 3);
  const latte::SafetensorsView& a = reader.tensors()[0];
  const latte::SafetensorsView& b = reader.tensors()[1];
  const latte::SafetensorsView& z = reader.tensors()[2];
  CHECK(a.name == "a");
  CHECK(a.dtype == latte::DType::BF16);
  CHECK(a.shape.empty());
  latte::bf16 a_value;
  std::memcpy(&a_value, a.data, 2);
  CHECK(latte::bf16_to_float(a_value) == 1.0f);
  CHECK(b.name == "b");
  CHECK(b.dtype == latte::DType::I32);
  CHECK(b.shape == std::vector<int64_t>{2});
  int32_t b_values[2];
  std::memcpy(b_values, b.data, 8);
  CHECK(b_values[0] == 7);
  CHECK(b_values[1] == -2);
  CHECK(z.name == "z");
  CHECK(z.dtype == latte::DType::F64);
  CHECK(z.shape == std::vector<int64_t>{3, 0});
  CHECK(z.nbytes == 0);
  CHECK(z.data == a.data + 4);

  // Views stay valid in a moved-to reader.
  const latte::SafetensorsReader moved = std::move(reader);
  CHECK(moved.at("b").data == b.data);
  std::memcpy(b_values, moved.at("b").data, 8);
  CHECK(b_values[1] == -2);
}

TEST_CASE("SafetensorsReader rejects malformed files naming the file, tensor and values") {
  struct Case {
    std::string what;
    std::string bytes;
    const char* expected;
  };
  const std::string f32_w = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\0');
  const auto tensor = [](const std::string& body) { return "{\"w\":{" + body + "}}"; };
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", "abc", "file is 3 bytes, shorter than the 8-byte header length"},
      {"truncated header", length_prefix(100) + std::string(10, ' '),
       "header length 100 but only 10 bytes follow the length field (truncated header)"},
      {"absurd header length", length_prefix(uint64_t{1} << 40) + "{}",
       "header length 1099511627776 exceeds the limit of 100000000 bytes"},
      {"invalid UTF-8 byte", file_bytes("{\"w\xff\":1}", ""),
       "header is not valid UTF-8: byte 0xff at offset 3"},
      {"overlong UTF-8", file_bytes("{\"\xc0\x80\":1}", ""),
       "header is not valid UTF-8: byte 0xc0 at offset 2"},
      {"UTF-8 surrogate", file_bytes("{\"\xed\xa0\x80\":1}", ""),
       "header is not valid UTF-8: byte 0xed at offset 2"},
      {"UTF-8 cut short", file_bytes("{\"\xe2\x82", ""),
       "header is not valid UTF-8: byte 0xe2 at offset 2"},
      {"invalid JSON", file_bytes("{\"w\": ", ""), "header is not valid JSON"},
      {"header not an object", file_bytes("[1, 2]", ""),
       "header is a JSON array, expected a JSON object"},
      {"repeated tensor", file_bytes("{" + f32_w + "," + f32_w + "}", data8),
       "header key 'w' appears twice"},
      {"entry not an object", file_bytes(R"({"w":3})", ""), "tensor 'w': entry is a JSON number"},
      {"missing dtype", file_bytes(tensor(R"("shape":[2],"data_offsets":[0,8])"), data8),
       "tensor 'w': entry has no 'dtype'"},
      {"missing shape", file_bytes(tensor(R"("dtype":"F32","data_offsets":[0,8])"), data8),
       "tensor 'w': entry has no 'shape'"},
      {"missing data_offsets", file_bytes(tensor(R"("dtype":"F32","shape":[2])"), data8),
       "tensor 'w': entry has no 'data_offsets'"},
      {"dtype not a string",
       file_bytes(tensor(R"("dtype":7,"shape":[2],"data_offsets":[0,8])"), data8),
       "tensor 'w': dtype is 7, expected a string"},
      {"shape not an array",
       file_bytes(tensor(R"("dtype":"F32","shape":"2","data_offsets":[0,8])"), data8),
       "tensor 'w': shape is \"2\", expected an array of integers"},
      {"negative dim",
       file_bytes(tensor(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), data8),
       "tensor 'w': shape dim is -2, expected a non-negative integer"},
      {"fractional dim",
       file_bytes(tensor(R"("dtype":"F32","shape":[1.5],"data_offsets":[0,8])"), data8),
       "tensor 'w': shape dim is 1.5, expected a non-negative integer"},
      {"string dim",
       file_bytes(tensor(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])"), data8),
       "tensor 'w': shape dim is \"2\", expected a non-negative integer"},
      {"unknown dtype F8_E4M3",
       file_bytes(tensor(R"("dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8])"), data8),
       "tensor 'w': unsupported dtype \"F8_E4M3\" (supported: F32, F64, BF16, I32, I64)"},
      {"unknown dtype U8",
       file_bytes(tensor(R"("dtype":"U8","shape":[8],"data_offsets":[0,8])"), data8),
       "tensor 'w': unsupported dtype \"U8\""},
      {"data_offsets not a pair",
       file_bytes(tensor(R"("dtype":"F32","shape":[2],"data_offsets":[8])"), data8),
       "tensor 'w': data_offsets is [8], expected [begin, end]"},
      {"data_offsets not integers",
       file_bytes(tensor(R"("dtype":"F32","shape":[2],"data_offsets":[0,"8"])"), data8),
       "tensor 'w': data_offsets end is \"8\", expected a non-negative integer"},
      {"negative offset",
       file_bytes(tensor(R"("dtype":"F32","shape":[2],"data_offsets":[-8,0])"), data8),
       "tensor 'w': data_offsets begin is -8, expected a non-negative integer"},
      {"end before begin",
       file_bytes(tensor(R"("dtype":"F32","shape":[2],"data_offsets":[8,0])"), data8),
       "tensor 'w': data_offsets [8, 0] end before begin"},
      {"truncated data",
       file_bytes(tensor(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])"),
                  std::string(4, '\0')),
       "tensor 'w': data_offsets [0, 8] extend beyond the data buffer of 4 bytes (truncated data)"},
      {"size does not match shape",
       file_bytes(tensor(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), data8),
       "tensor 'w': data_offsets [0, 8] hold 8 bytes, expected 12 for shape [3] of F32"},
      {"size of a scalar",
       file_bytes(tensor(R"("dtype":"F64","shape":[],"data_offsets":[0,4])"), data8),
       "tensor 'w': data_offsets [0, 4] hold 4 bytes, expected 8 for shape [] of F64"},
      {"shape overflows",
       file_bytes(tensor(R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8])"),
                  data8),
       "tensor 'w': shape [4294967296, 4294967296] overflows"},
      {"overlapping tensors",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}})",
                  std::string(12, '\0')),
       "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
      {"tensor inside another",
       file_bytes(R"({"a":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},)"
                  R"("b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},)"
                  R"("c":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}})",
                  std::string(24, '\0')),
       "tensors 'a' [0, 24) and 'b' [8, 12) overlap"},
      {"metadata value not a string", file_bytes(R"({"__metadata__":{"step":5}})", ""),
       "metadata value of 'step' is 5, expected a string"},
      {"metadata not an object", file_bytes(R"({"__metadata__":["a"]})", ""),
       "__metadata__ is a JSON array, expected an object of strings"},
  };
  TempDir dir;
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string path = dir.write("bad.safetensors", c.bytes);
    const std::string expected = "safetensors: '" + path + "': " + c.expected;
    CHECK_THROWS_WITH_AS(latte::SafetensorsReader::open(path), doctest::Contains(expected.c_str()),
                         latte::Error);
  }
}

TEST_CASE("write_safetensors rejects invalid entries and leaves no file behind") {
  TempDir dir;
  const std::string path = dir.file("rejected.safetensors");
  const float values[6] = {};
  struct Case {
    std::string what;
    std::vector<latte::SafetensorsEntry> entries;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"nbytes mismatch",
       {{"w", latte::DType::F32, {2, 3}, values, 20}},
       "tensor 'w': nbytes is 20, expected 24 for shape [2, 3] of F32"},
      {"repeated name",
       {{"w", latte::DType::F32, {1}, values, 4}, {"w", latte::DType::F32, {1}, values, 4}},
       "tensor 'w': the name appears twice"},
      {"reserved name",
       {{"__metadata__", latte::DType::F32, {1}, values, 4}},
       "tensor '__metadata__': the name is reserved for metadata"},
      {"negative dim",
       {{"w", latte::DType::F32, {-1, 2}, values, 8}},
       "tensor 'w': shape [-1, 2] has a negative dim"},
      {"invalid UTF-8 name",
       {{"w\xff", latte::DType::F32, {1}, values, 4}},
       "tensor name 'w...' is not valid UTF-8: byte 0xff at offset 1"},
      {"null data", {{"w", latte::DType::F32, {1}, nullptr, 4}}, "tensor 'w': data is null"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string expected = "write_safetensors: '" + path + "': " + c.expected;
    CHECK_THROWS_WITH_AS(latte::write_safetensors(path, c.entries),
                         doctest::Contains(expected.c_str()), latte::Error);
    CHECK_FALSE(fs::exists(path));
  }
  CHECK_THROWS_WITH_AS(latte::write_safetensors(path, {}, {{"k", "\xc3"}}),
                       doctest::Contains("metadata value of 'k' is not valid UTF-8: byte 0xc3"),
                       latte::Error);
  CHECK_THROWS_WITH_AS(latte::write_safetensors(path, {}, {{"k\x80", "v"}}),
                       doctest::Contains("metadata key 'k...' is not valid UTF-8: byte 0x80"),
                       latte::Error);
  CHECK_FALSE(fs::exists(path));
}
