// llm.c token shards: u16/u32 round trips with their exact header bytes, and one test per kind
// of bad shard checking that the error names the file and what is wrong with it.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/io/token_shard.h"
#include "tests/support/error_text.h"
#include "tests/support/temp_dir.h"

namespace latte {
namespace {

using test::error_of;

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int32_t header_int(const std::vector<unsigned char>& bytes, size_t index) {
  int32_t value;
  std::memcpy(&value, bytes.data() + 4 * index, sizeof(value));
  return value;
}

// A shard file with the given header ints and `token_bytes` zero bytes of tokens.
std::string write_raw_shard(const test::TempDir& dir, const std::string& name, int32_t magic,
                            int32_t version, int32_t count, size_t token_bytes) {
  std::vector<int32_t> header(kShardHeaderInts, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = count;
  std::string bytes(reinterpret_cast<const char*>(header.data()), kShardHeaderBytes);
  bytes.append(token_bytes, '\0');
  return dir.write(name, bytes);
}

}  // namespace

TEST_CASE("token shard u16 round trip writes llm.c's gpt-2 header") {
  test::TempDir dir;
  const std::string path = (dir.path() / "a.bin").string();
  const std::vector<uint32_t> tokens = {0, 1, 255, 256, 50256, 65535};
  write_token_shard(path, tokens, TokenFormat::kU16);

  const std::vector<unsigned char> bytes = read_bytes(path);
  REQUIRE(bytes.size() == kShardHeaderBytes + 2 * tokens.size());
  CHECK(header_int(bytes, 0) == 20240520);
  CHECK(header_int(bytes, 1) == 1);
  CHECK(header_int(bytes, 2) == 6);
  for (size_t i = 3; i < kShardHeaderInts; ++i) CHECK(header_int(bytes, i) == 0);
  // Token 50256 = 0xC450 little-endian: low byte first, at offset header + 2 * 4.
  CHECK(bytes[kShardHeaderBytes + 8] == 0x50);
  CHECK(bytes[kShardHeaderBytes + 9] == 0xC4);

  const TokenShard shard = read_token_shard(path);
  CHECK(shard.format == TokenFormat::kU16);
  CHECK(shard.tokens == tokens);
}

TEST_CASE("token shard u32 round trip writes llm.c's llama-3 header") {
  test::TempDir dir;
  const std::string path = (dir.path() / "b.bin").string();
  const std::vector<uint32_t> tokens = {7, 65536, 128000, 0xFFFFFFFFu};
  write_token_shard(path, tokens, TokenFormat::kU32);

  const std::vector<unsigned char> bytes = read_bytes(path);
  REQUIRE(bytes.size() == kShardHeaderBytes + 4 * tokens.size());
  CHECK(header_int(bytes, 0) == 20240801);
  CHECK(header_int(bytes, 1) == 7);
  CHECK(header_int(bytes, 2) == 4);

  const TokenShard shard = read_token_shard(path);
  CHECK(shard.format == TokenFormat::kU32);
  CHECK(shard.tokens == tokens);
}

TEST_CASE("token shard rewrite replaces the file and leaves no temporary behind") {
  test::TempDir dir;
  const std::string path = (dir.path() / "c.bin").string();
  write_token_shard(path, std::vector<uint32_t>{1, 2, 3}, TokenFormat::kU16);
  write_token_shard(path, std::vector<uint32_t>{9, 8}, TokenFormat::kU32);
  const TokenShard shard = read_token_shard(path);
  CHECK(shard.format == TokenFormat::kU32);
  CHECK(shard.tokens == std::vector<uint32_t>{9, 8});
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("token shard writer refuses what the format cannot hold") {
  test::TempDir dir;
  const std::string path = (dir.path() / "d.bin").string();
  const std::string too_large = error_of([&] {
    write_token_shard(path, std::vector<uint32_t>{1, 65536}, TokenFormat::kU16);
  });
  CHECK(too_large.find(path) != std::string::npos);
  CHECK(too_large.find("token 65536 at position 1 does not fit u16") != std::string::npos);
  const std::string empty =
      error_of([&] { write_token_shard(path, std::vector<uint32_t>{}, TokenFormat::kU16); });
  CHECK(empty.find("no tokens") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("token format names parse and unknown names are refused") {
  CHECK(parse_token_format("u16", "--format") == TokenFormat::kU16);
  CHECK(parse_token_format("u32", "--format") == TokenFormat::kU32);
  CHECK(token_format_name(TokenFormat::kU32) == "u32");
  const std::string message = error_of([] { parse_token_format("u8", "--format"); });
  CHECK(message.find("--format: unknown token format 'u8'") != std::string::npos);
}

TEST_CASE("bad shard: file shorter than the header") {
  test::TempDir dir;
  const std::string path = dir.write("short.bin", std::string(100, '\0'));
  const std::string message = error_of([&] { read_token_shard(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("file has 100 bytes, shorter than the 1024-byte header") != std::string::npos);
}

TEST_CASE("bad shard: wrong magic says found and expected") {
  test::TempDir dir;
  const std::string path = write_raw_shard(dir, "magic.bin", 12345, 1, 4, 8);
  const std::string message = error_of([&] { read_token_shard(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("wrong magic: found 12345, expected 20240520 (u16) or 20240801 (u32)") !=
        std::string::npos);
}

TEST_CASE("bad shard: unsupported version") {
  test::TempDir dir;
  const std::string u16 = write_raw_shard(dir, "v2.bin", 20240520, 2, 4, 8);
  const std::string message = error_of([&] { read_token_shard(u16); });
  CHECK(message.find(u16) != std::string::npos);
  CHECK(message.find("unsupported version 2 for magic 20240520 (expected 1") != std::string::npos);
  // llm.c's uint32 shards are version 7; version 1 under the u32 magic is not one of them.
  const std::string u32 = write_raw_shard(dir, "v1.bin", 20240801, 1, 4, 16);
  CHECK(error_of([&] {
          read_token_shard(u32);
        }).find("unsupported version 1 for magic 20240801 (expected 7") != std::string::npos);
}

TEST_CASE("bad shard: token count disagrees with the file size") {
  test::TempDir dir;
  const std::string truncated = write_raw_shard(dir, "trunc.bin", 20240520, 1, 10, 16);
  const std::string message = error_of([&] { read_token_shard(truncated); });
  CHECK(message.find(truncated) != std::string::npos);
  CHECK(message.find("truncated: the header says 10 u16 tokens, so expected 20 bytes of tokens, "
                     "found 16") != std::string::npos);
  const std::string longer = write_raw_shard(dir, "long.bin", 20240801, 7, 2, 12);
  const std::string long_message = error_of([&] { read_token_shard(longer); });
  CHECK(
      long_message.find("the header says 2 u32 tokens, so expected 8 bytes of tokens, found 12") !=
      std::string::npos);
  CHECK(long_message.find("truncated") == std::string::npos);
}

TEST_CASE("bad shard: empty shard") {
  test::TempDir dir;
  const std::string path = write_raw_shard(dir, "empty.bin", 20240520, 1, 0, 0);
  const std::string message = error_of([&] { read_token_shard(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("empty shard (0 tokens)") != std::string::npos);
}

TEST_CASE("bad shard: missing file") {
  test::TempDir dir;
  const std::string path = (dir.path() / "absent.bin").string();
  const std::string message = error_of([&] { read_token_shard(path); });
  CHECK(message == "token shard '" + path + "': no such file");
}

}  // namespace latte
