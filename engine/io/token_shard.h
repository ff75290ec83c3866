// llm.c token shards (the .bin files of karpathy/llm.c): a header of 256 little-endian int32
// followed by the tokens, little-endian. latte reads and writes exactly llm.c's two formats:
//   u16: header[0] = 20240520, header[1] = 1, tokens uint16 (llm.c's "gpt-2" shards)
//   u32: header[0] = 20240801, header[1] = 7, tokens uint32 (llm.c's "llama-3" shards)
// header[2] is the token count; the other header ints are 0. The file size must be exactly
// 1024 bytes + count * token width.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace latte {

enum class TokenFormat { kU16, kU32 };

inline constexpr int32_t kShardMagicU16 = 20240520;
inline constexpr int32_t kShardVersionU16 = 1;
inline constexpr int32_t kShardMagicU32 = 20240801;
inline constexpr int32_t kShardVersionU32 = 7;
inline constexpr size_t kShardHeaderInts = 256;
inline constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);

// "u16" or "u32".
std::string_view token_format_name(TokenFormat format);
// Parses "u16" / "u32"; anything else throws latte::Error naming `what` (e.g. "--format").
TokenFormat parse_token_format(std::string_view name, std::string_view what);
// Bytes per token: 2 or 4.
size_t token_width(TokenFormat format);

// Where the tokens of a shard lie inside the shard file's bytes.
struct ShardView {
  TokenFormat format = TokenFormat::kU16;
  int64_t num_tokens = 0;
  const std::byte* tokens = nullptr;  // num_tokens * token_width(format) bytes, little-endian
};

// Validates the header of the shard `path` whose whole content is bytes[0, size) and returns
// where its tokens are. Throws latte::Error naming the path for: a file shorter than the
// header, a wrong magic, an unsupported version, an empty shard, a token count that disagrees
// with the file size.
ShardView parse_token_shard(const std::string& path, const std::byte* bytes, size_t size);

struct TokenShard {
  TokenFormat format = TokenFormat::kU16;
  std::vector<uint32_t> tokens;
};

// Reads the whole shard at `path` (memory-mapped) with its tokens widened to uint32.
TokenShard read_token_shard(const std::string& path);

// Writes `tokens` as a shard at `path`, atomically (readers see the old file or the complete
// new one). Throws when `tokens` is empty, has more than INT32_MAX tokens (the header's int32
// count), or holds a token that does not fit `format`.
void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       TokenFormat format);

}  // namespace latte
