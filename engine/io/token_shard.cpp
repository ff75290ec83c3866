#include "engine/io/token_shard.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <ostream>

#include "engine/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/mapped_file.h"

namespace latte {

static_assert(std::endian::native == std::endian::little,
              "token shards are little-endian and are read by memcpy");

std::string_view token_format_name(TokenFormat format) {
  return format == TokenFormat::kU16 ? "u16" : "u32";
}

TokenFormat parse_token_format(std::string_view name, std::string_view what) {
  if (name == "u16") return TokenFormat::kU16;
  if (name == "u32") return TokenFormat::kU32;
  LATTE_FAIL() << what << ": unknown token format '" << name << "' (expected u16 or u32)";
}

size_t token_width(TokenFormat format) {
  return format == TokenFormat::kU16 ? 2 : 4;
}

ShardView parse_token_shard(const std::string& path, const std::byte* bytes, size_t size) {
  LATTE_CHECK(size >= kShardHeaderBytes)
      << "token shard '" << path << "': file has " << size << " bytes, shorter than the "
      << kShardHeaderBytes << "-byte header";
  int32_t header[3];
  std::memcpy(header, bytes, sizeof(header));
  const int32_t magic = header[0];
  const int32_t version = header[1];
  ShardView view;
  if (magic == kShardMagicU16) {
    LATTE_CHECK(version == kShardVersionU16)
        << "token shard '" << path << "': unsupported version " << version << " for magic " << magic
        << " (expected " << kShardVersionU16 << ", uint16 tokens)";
    view.format = TokenFormat::kU16;
  } else if (magic == kShardMagicU32) {
    LATTE_CHECK(version == kShardVersionU32)
        << "token shard '" << path << "': unsupported version " << version << " for magic " << magic
        << " (expected " << kShardVersionU32 << ", uint32 tokens)";
    view.format = TokenFormat::kU32;
  } else {
    LATTE_FAIL() << "token shard '" << path << "': wrong magic: found " << magic << ", expected "
                 << kShardMagicU16 << " (u16) or " << kShardMagicU32 << " (u32)";
  }
  const int32_t count = header[2];
  LATTE_CHECK(count >= 0) << "token shard '" << path << "': negative token count " << count
                          << " in the header";
  LATTE_CHECK(count > 0) << "token shard '" << path << "': empty shard (0 tokens)";
  const size_t expected = static_cast<size_t>(count) * token_width(view.format);
  const size_t found = size - kShardHeaderBytes;
  LATTE_CHECK(found == expected) << "token shard '" << path
                                 << "': " << (found < expected ? "truncated: " : "")
                                 << "the header says " << count << " "
                                 << token_format_name(view.format) << " tokens, so expected "
                                 << expected << " bytes of tokens, found " << found;
  view.num_tokens = count;
  view.tokens = bytes + kShardHeaderBytes;
  return view;
}

TokenShard read_token_shard(const std::string& path) {
  LATTE_CHECK(std::filesystem::exists(path)) << "token shard '" << path << "': no such file";
  const MappedFile file = MappedFile::open(path);
  const ShardView view = parse_token_shard(path, file.data(), file.size());
  TokenShard shard;
  shard.format = view.format;
  shard.tokens.resize(static_cast<size_t>(view.num_tokens));
  if (view.format == TokenFormat::kU32) {
    std::memcpy(shard.tokens.data(), view.tokens, shard.tokens.size() * sizeof(uint32_t));
  } else {
    for (size_t i = 0; i < shard.tokens.size(); ++i) {
      uint16_t token;
      std::memcpy(&token, view.tokens + 2 * i, sizeof(token));
      shard.tokens[i] = token;
    }
  }
  return shard;
}

namespace {

// Writes tokens as `Word` (uint16_t or uint32_t) in chunks, so a large shard is never copied
// whole.
template <typename Word>
void write_tokens(std::ostream& out, std::span<const uint32_t> tokens) {
  constexpr size_t kChunk = size_t{1} << 16;
  std::vector<Word> buffer(std::min(kChunk, tokens.size()));
  for (size_t begin = 0; begin < tokens.size(); begin += kChunk) {
    const size_t n = std::min(kChunk, tokens.size() - begin);
    for (size_t i = 0; i < n; ++i) buffer[i] = static_cast<Word>(tokens[begin + i]);
    out.write(reinterpret_cast<const char*>(buffer.data()),
              static_cast<std::streamsize>(n * sizeof(Word)));
  }
}

}  // namespace

void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       TokenFormat format) {
  LATTE_CHECK(!tokens.empty()) << "write_token_shard '" << path
                               << "': no tokens (an empty shard is invalid)";
  LATTE_CHECK(tokens.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()))
      << "write_token_shard '" << path << "': " << tokens.size()
      << " tokens exceed the int32 count of the shard header; split them into several shards";
  if (format == TokenFormat::kU16) {
    const auto too_large =
        std::find_if(tokens.begin(), tokens.end(), [](uint32_t t) { return t > 0xFFFF; });
    LATTE_CHECK(too_large == tokens.end())
        << "write_token_shard '" << path << "': token " << *too_large << " at position "
        << (too_large - tokens.begin()) << " does not fit u16 (max 65535); use u32";
  }
  int32_t header[kShardHeaderInts] = {};
  header[0] = format == TokenFormat::kU16 ? kShardMagicU16 : kShardMagicU32;
  header[1] = format == TokenFormat::kU16 ? kShardVersionU16 : kShardVersionU32;
  header[2] = static_cast<int32_t>(tokens.size());
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
    if (format == TokenFormat::kU16) {
      write_tokens<uint16_t>(out, tokens);
    } else {
      write_tokens<uint32_t>(out, tokens);
    }
  });
}

}  // namespace latte
