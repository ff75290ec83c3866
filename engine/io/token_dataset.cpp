#include "engine/io/token_dataset.h"

#include <glob.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "engine/error.h"
#include "engine/io/text_corpus.h"

namespace latte {
namespace {

bool is_glob(const std::string& pattern) {
  return pattern.find_first_of("*?[") != std::string::npos;
}

// The files matching `pattern`, in byte-wise order; throws when there are none.
std::vector<std::string> expand_glob(const std::string& pattern) {
  glob_t matches{};
  const int result = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
  std::vector<std::string> paths;
  if (result == 0) paths.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  ::globfree(&matches);
  LATTE_CHECK(result == 0 || result == GLOB_NOMATCH)
      << "data glob '" << pattern << "': cannot be expanded (glob error " << result << ")";
  LATTE_CHECK(!paths.empty()) << "data glob '" << pattern << "' matches no file";
  std::sort(paths.begin(), paths.end());
  return paths;
}

// Loads token `i` of a little-endian array of `width`-byte tokens.
uint32_t load_token(const std::byte* tokens, size_t width, int64_t i) {
  const std::byte* p = tokens + static_cast<size_t>(i) * width;
  if (width == 1) return static_cast<uint32_t>(*p);
  if (width == 2) {
    uint16_t token;
    std::memcpy(&token, p, sizeof(token));
    return token;
  }
  uint32_t token;
  std::memcpy(&token, p, sizeof(token));
  return token;
}

template <typename Word>
uint32_t max_of(const std::byte* tokens, int64_t n) {
  Word result = 0;
#pragma omp parallel for reduction(max : result)
  for (int64_t i = 0; i < n; ++i) {
    Word token;
    std::memcpy(&token, tokens + static_cast<size_t>(i) * sizeof(Word), sizeof(Word));
    result = std::max(result, token);
  }
  return result;
}

uint32_t max_token(const std::byte* tokens, size_t width, int64_t n) {
  if (width == 1) return max_of<uint8_t>(tokens, n);
  if (width == 2) return max_of<uint16_t>(tokens, n);
  return max_of<uint32_t>(tokens, n);
}

}  // namespace

const std::byte* TokenDataset::Source::tokens() const {
  if (file) return file->data() + data_offset;
  return reinterpret_cast<const std::byte*>(owned.data());
}

void TokenDataset::add_source(Source source) {
  const uint32_t source_max = max_token(source.tokens(), source.width, source.num_tokens);
  LATTE_CHECK(source_max <= static_cast<uint32_t>(std::numeric_limits<int32_t>::max()))
      << "data file '" << source.path << "': token id " << source_max
      << " does not fit int32 (token ids must be < 2^31)";
  if (sources_.empty() || source_max > max_token_id_) {
    max_token_id_ = source_max;
    max_token_path_ = source.path;
  }
  source.first_token = num_tokens_;
  num_tokens_ += source.num_tokens;
  sources_.push_back(std::move(source));
}

TokenDataset TokenDataset::open(const std::vector<std::string>& patterns) {
  namespace fs = std::filesystem;
  LATTE_CHECK(!patterns.empty()) << "data: no files given";
  TokenDataset dataset;
  for (const std::string& pattern : patterns) {
    const std::vector<std::string> paths =
        is_glob(pattern) ? expand_glob(pattern) : std::vector<std::string>{pattern};
    for (const std::string& path : paths) {
      LATTE_CHECK(fs::exists(path)) << "data file '" << path << "': no such file";
      const std::string extension = fs::path(path).extension().string();
      LATTE_CHECK(extension == ".bin" || extension == ".txt")
          << "data file '" << path << "': unknown type '" << extension
          << "' (expected .bin, an llm.c token shard, or .txt, text read as byte tokens)";
      Source source;
      source.path = path;
      source.file = MappedFile::open(path);
      if (extension == ".bin") {
        const ShardView view = parse_token_shard(path, source.file->data(), source.file->size());
        source.data_offset = kShardHeaderBytes;
        source.width = token_width(view.format);
        source.num_tokens = view.num_tokens;
      } else {
        LATTE_CHECK(source.file->size() > 0) << "data file '" << path << "': empty text file";
        source.width = 1;
        source.num_tokens = static_cast<int64_t>(source.file->size());
      }
      dataset.add_source(std::move(source));
    }
  }
  return dataset;
}

TokenDataset TokenDataset::from_tokens(std::vector<uint32_t> tokens, std::string name) {
  LATTE_CHECK(!tokens.empty()) << "data '" << name << "': no tokens";
  TokenDataset dataset;
  Source source;
  source.path = std::move(name);
  source.width = sizeof(uint32_t);
  source.num_tokens = static_cast<int64_t>(tokens.size());
  source.owned = std::move(tokens);
  dataset.add_source(std::move(source));
  return dataset;
}

std::vector<TokenDataset::File> TokenDataset::files() const {
  std::vector<File> result;
  for (const Source& s : sources_) result.push_back({s.path, s.width, s.num_tokens});
  return result;
}

std::string TokenDataset::description() const {
  if (sources_.size() == 1) return sources_.front().path;
  return sources_.front().path + " and " + std::to_string(sources_.size() - 1) + " more files";
}

void TokenDataset::copy_tokens(int64_t begin, int64_t count, int32_t* out) const {
  LATTE_CHECK(begin >= 0 && count >= 0 && begin + count <= num_tokens_)
      << "data '" << description() << "': tokens [" << begin << ", " << begin + count
      << ") are outside the " << num_tokens_ << " tokens";
  // The first source whose tokens extend past `begin`.
  auto source = std::upper_bound(
      sources_.begin(), sources_.end(), begin,
      [](int64_t position, const Source& s) { return position < s.first_token + s.num_tokens; });
  int64_t position = begin;
  const int64_t end = begin + count;
  while (position < end) {
    const int64_t local_end = std::min(end, source->first_token + source->num_tokens);
    const std::byte* tokens = source->tokens();
    for (int64_t i = position; i < local_end; ++i) {
      *out++ = static_cast<int32_t>(load_token(tokens, source->width, i - source->first_token));
    }
    position = local_end;
    ++source;
  }
}

void check_vocab(uint32_t max_token_id, int64_t vocab_size, const std::string& data_name) {
  LATTE_CHECK(static_cast<int64_t>(max_token_id) < vocab_size)
      << "data '" << data_name << "' has token id " << max_token_id
      << " but model.vocab_size = " << vocab_size << " (token ids must be below it; set"
      << " model.vocab_size >= " << static_cast<int64_t>(max_token_id) + 1 << ")";
}

void check_vocab(const TokenDataset& dataset, int64_t vocab_size) {
  check_vocab(dataset.max_token_id(), vocab_size, dataset.max_token_path());
}

void to_json(nlohmann::json& json, const LoaderState& state) {
  json = nlohmann::json{{"seed", state.seed}, {"windows_drawn", state.windows_drawn}};
}

void from_json(const nlohmann::json& json, LoaderState& state) {
  LATTE_CHECK(json.is_object() && json.contains("seed") && json.contains("windows_drawn"))
      << "loader state: expected an object with 'seed' and 'windows_drawn', got " << json.dump();
  state.seed = json.at("seed").get<uint64_t>();
  state.windows_drawn = json.at("windows_drawn").get<int64_t>();
  LATTE_CHECK(state.windows_drawn >= 0)
      << "loader state: windows_drawn = " << state.windows_drawn << " must be >= 0";
}

namespace {

void check_window_fits(const TokenDataset& dataset, int64_t seq_len, const char* who) {
  LATTE_CHECK(seq_len > 0) << who << ": seq_len = " << seq_len << " must be > 0";
  LATTE_CHECK(dataset.num_tokens() >= seq_len + 1)
      << who << ": data '" << dataset.description() << "' has " << dataset.num_tokens()
      << " tokens; a window of seq_len " << seq_len << " needs " << seq_len + 1;
}

// Fills row `row` of `out` with the window of seq_len + 1 tokens starting at `start`.
void fill_row(const TokenDataset& dataset, int64_t start, int64_t row, Batch& out) {
  const int64_t t = out.seq_len;
  dataset.copy_tokens(start, t, out.inputs.data() + row * t);
  dataset.copy_tokens(start + 1, t, out.targets.data() + row * t);
}

void shape_batch(Batch& out, int64_t batch, int64_t seq_len) {
  out.batch = batch;
  out.seq_len = seq_len;
  out.inputs.resize(static_cast<size_t>(batch * seq_len));
  out.targets.resize(static_cast<size_t>(batch * seq_len));
}

}  // namespace

BatchLoader::BatchLoader(const TokenDataset& dataset, int64_t batch, int64_t seq_len, uint64_t seed,
                         int rank, int world_size)
    : dataset_(&dataset), batch_(batch), seq_len_(seq_len), rank_(rank), world_size_(world_size) {
  LATTE_CHECK(batch > 0) << "BatchLoader: batch = " << batch << " must be > 0";
  LATTE_CHECK(world_size > 0 && rank >= 0 && rank < world_size)
      << "BatchLoader: rank " << rank << " is not in [0, world_size = " << world_size << ")";
  check_window_fits(dataset, seq_len, "BatchLoader");
  state_.seed = seed;
}

void BatchLoader::next(Batch& out) {
  shape_batch(out, batch_, seq_len_);
  const auto num_starts = static_cast<uint64_t>(dataset_->num_tokens() - seq_len_);
  const int64_t first = state_.windows_drawn + static_cast<int64_t>(rank_) * batch_;
  for (int64_t b = 0; b < batch_; ++b) {
    const uint64_t random = splitmix64_at(state_.seed, static_cast<uint64_t>(first + b));
    fill_row(*dataset_, static_cast<int64_t>(uniform_below(random, num_starts)), b, out);
  }
  state_.windows_drawn += static_cast<int64_t>(world_size_) * batch_;
}

Batch BatchLoader::next() {
  Batch batch;
  next(batch);
  return batch;
}

void BatchLoader::restore(const LoaderState& state) {
  LATTE_CHECK(state.windows_drawn >= 0)
      << "BatchLoader::restore: windows_drawn = " << state.windows_drawn << " must be >= 0";
  state_ = state;
}

ValidationWindows::ValidationWindows(const TokenDataset& dataset, int64_t seq_len,
                                     int64_t max_windows)
    : dataset_(&dataset), seq_len_(seq_len) {
  check_window_fits(dataset, seq_len, "ValidationWindows");
  LATTE_CHECK(max_windows > 0) << "ValidationWindows: max_windows = " << max_windows
                               << " must be > 0";
  num_windows_ = std::min(max_windows, (dataset.num_tokens() - 1) / seq_len);
}

Batch ValidationWindows::get(int64_t first, int64_t count) const {
  LATTE_CHECK(first >= 0 && count > 0 && first + count <= num_windows_)
      << "ValidationWindows::get: windows [" << first << ", " << first + count
      << ") are outside the " << num_windows_ << " windows";
  Batch out;
  shape_batch(out, count, seq_len_);
  for (int64_t row = 0; row < count; ++row) {
    fill_row(*dataset_, (first + row) * seq_len_, row, out);
  }
  return out;
}

}  // namespace latte
