// TokenDataset: the token stream of a list of data files (llm.c shards *.bin in u16 or u32,
// raw text *.txt read as byte tokens), concatenated in order, memory-mapped. BatchLoader draws
// training windows at seeded random starts, split across ranks, with a resumable position;
// ValidationWindows serves a fixed set of windows so eval losses compare across runs.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/mapped_file.h"
#include "engine/io/token_shard.h"

namespace latte {

class TokenDataset {
 public:
  // Opens every file of `patterns`, in order: a pattern with *, ? or [ is a glob whose matches
  // are taken in byte-wise name order; any other pattern is a path. Throws latte::Error for an
  // empty list, a missing file, a glob that matches nothing, a file that is neither *.bin nor
  // *.txt, an invalid shard (token_shard.h), an empty text file, or a token id >= 2^31.
  static TokenDataset open(const std::vector<std::string>& patterns);
  // A dataset over tokens held in memory, called `name` in messages.
  static TokenDataset from_tokens(std::vector<uint32_t> tokens, std::string name);

  int64_t num_tokens() const { return num_tokens_; }
  uint32_t max_token_id() const { return max_token_id_; }
  // The file holding the largest token id (the first such file).
  const std::string& max_token_path() const { return max_token_path_; }
  // The files, in stream order.
  struct File {
    std::string path;
    size_t token_width;  // bytes per token: 1 (text), 2 (u16 shard), 4 (u32 shard)
    int64_t num_tokens;
  };
  std::vector<File> files() const;
  // The files for messages: the path, or the first path and how many more.
  std::string description() const;

  // Writes tokens [begin, begin + count) of the stream to out, crossing file boundaries.
  void copy_tokens(int64_t begin, int64_t count, int32_t* out) const;

 private:
  struct Source {
    std::string path;
    std::optional<MappedFile> file;  // the mapped file; empty for in-memory tokens
    std::vector<uint32_t> owned;     // in-memory tokens (from_tokens)
    size_t data_offset = 0;          // where the tokens start inside the file
    size_t width = 1;                // bytes per token: 1 (text), 2 (u16), 4 (u32)
    int64_t num_tokens = 0;
    int64_t first_token = 0;  // position of this file's first token in the stream
    const std::byte* tokens() const;
  };

  TokenDataset() = default;
  void add_source(Source source);

  std::vector<Source> sources_;
  int64_t num_tokens_ = 0;
  uint32_t max_token_id_ = 0;
  std::string max_token_path_;
};

// Throws latte::Error when the data holds a token id the model cannot embed, naming the data
// and the config key, e.g. "data 'train.bin' has token id 300 but model.vocab_size = 256".
void check_vocab(uint32_t max_token_id, int64_t vocab_size, const std::string& data_name);
void check_vocab(const TokenDataset& dataset, int64_t vocab_size);

// A batch of windows: inputs and targets are int32 [batch, seq_len], row-major, and
// targets[b][t] = inputs[b][t + 1] within the window (the window holds seq_len + 1 tokens).
struct Batch {
  int64_t batch = 0;
  int64_t seq_len = 0;
  std::vector<int32_t> inputs;
  std::vector<int32_t> targets;
};

// Everything a BatchLoader needs to continue where it stopped; saved in checkpoints.
struct LoaderState {
  uint64_t seed = 0;
  // Windows drawn so far by all ranks together (steps * world_size * batch).
  int64_t windows_drawn = 0;
};
void to_json(nlohmann::json& json, const LoaderState& state);
void from_json(const nlohmann::json& json, LoaderState& state);

// Draws training windows. Global window g (g = 0, 1, ...) starts at
// uniform_below(splitmix64_at(seed, g), num_tokens - seq_len), so it depends on nothing but
// the seed and g. Each step draws one global batch of world_size * batch windows; rank r takes
// windows [r * batch, (r + 1) * batch) of it. The dataset must outlive the loader.
class BatchLoader {
 public:
  BatchLoader(const TokenDataset& dataset, int64_t batch, int64_t seq_len, uint64_t seed,
              int rank = 0, int world_size = 1);

  // The next batch of this rank; `out` is resized on first use only.
  void next(Batch& out);
  Batch next();

  LoaderState state() const { return state_; }
  // Continues from `state`: the following batches are those the loader that saved it would
  // have drawn next.
  void restore(const LoaderState& state);

 private:
  const TokenDataset* dataset_;
  int64_t batch_;
  int64_t seq_len_;
  int rank_;
  int world_size_;
  LoaderState state_;
};

// The first `max_windows` non-overlapping windows of the dataset (fewer when it is shorter):
// window k holds tokens [k * seq_len, (k + 1) * seq_len + 1). Fixed by the data alone, so every
// run evaluates on the same tokens; any seq_len may be asked for (e.g. 2x or 4x the training
// length, to measure length extrapolation).
class ValidationWindows {
 public:
  ValidationWindows(const TokenDataset& dataset, int64_t seq_len, int64_t max_windows);

  int64_t size() const { return num_windows_; }
  int64_t seq_len() const { return seq_len_; }
  // Windows [first, first + count) as one batch of `count` rows.
  Batch get(int64_t first, int64_t count) const;

 private:
  const TokenDataset* dataset_;
  int64_t seq_len_;
  int64_t num_windows_;
};

}  // namespace latte
