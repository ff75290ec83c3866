#include "engine/io/text_corpus.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <system_error>
#include <utility>

#include "engine/error.h"
#include "kernels/cpu/random.h"

namespace latte {

std::vector<uint32_t> encode_bytes(std::string_view text) {
  std::vector<uint32_t> tokens(text.size());
  for (size_t i = 0; i < text.size(); ++i) tokens[i] = static_cast<unsigned char>(text[i]);
  return tokens;
}

std::string decode_bytes(std::span<const int32_t> tokens) {
  std::string text(tokens.size(), '\0');
  for (size_t i = 0; i < tokens.size(); ++i) {
    LATTE_CHECK(tokens[i] >= 0 && tokens[i] < kByteVocabSize)
        << "decode_bytes: token " << tokens[i] << " at position " << i
        << " is not a byte (byte tokens are in [0, " << kByteVocabSize << "))";
    text[i] = static_cast<char>(static_cast<unsigned char>(tokens[i]));
  }
  return text;
}

DocumentFormat parse_document_format(std::string_view name, std::string_view what) {
  if (name == "text") return DocumentFormat::kParagraphs;
  if (name == "fortune") return DocumentFormat::kFortune;
  LATTE_FAIL() << what << ": unknown document format '" << name << "' (expected text or fortune)";
}

namespace {

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

bool is_fortune_separator(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line == "%";
}

}  // namespace

std::vector<std::string> split_documents(std::string_view text, DocumentFormat format) {
  std::vector<std::string> documents;
  std::string current;
  auto finish_document = [&] {
    if (!is_blank(current)) documents.push_back(std::move(current));
    current.clear();
  };
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t newline = text.find('\n', begin);
    const size_t end = newline == std::string_view::npos ? text.size() : newline + 1;
    const std::string_view line = text.substr(begin, end - begin);
    const bool separator =
        format == DocumentFormat::kFortune ? is_fortune_separator(line) : is_blank(line);
    if (separator) {
      finish_document();
    } else {
      current.append(line);
    }
    begin = end;
  }
  finish_document();
  return documents;
}

std::vector<std::string> read_documents(const std::string& path, DocumentFormat format) {
  LATTE_CHECK(std::filesystem::is_regular_file(path))
      << "text file '" << path
      << "': " << (std::filesystem::exists(path) ? "not a regular file" : "no such file");
  std::ifstream in(path, std::ios::binary);
  LATTE_CHECK(in) << "text file '" << path << "': cannot open for reading";
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  LATTE_CHECK(!in.bad()) << "text file '" << path << "': read error";
  return split_documents(text, format);
}

std::vector<uint32_t> join_documents(std::span<const std::string> documents) {
  size_t total = 0;
  for (const std::string& document : documents) total += 1 + document.size();
  std::vector<uint32_t> tokens;
  tokens.reserve(total);
  for (const std::string& document : documents) {
    tokens.push_back(kEndOfDocumentToken);
    for (const char c : document) tokens.push_back(static_cast<unsigned char>(c));
  }
  return tokens;
}

std::vector<std::string> english_fortune_files(const std::string& directory) {
  namespace fs = std::filesystem;
  LATTE_CHECK(fs::is_directory(directory))
      << "fortune directory '" << directory
      << "' does not exist (install Debian's `fortunes` package, or name another directory)";
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_symlink() || !entry.is_regular_file()) continue;
    if (name.ends_with(".dat") || name.ends_with(".u8")) continue;
    files.push_back(entry.path().string());
  }
  LATTE_CHECK(!files.empty()) << "fortune directory '" << directory
                              << "' holds no fortune file (regular files other than *.dat, *.u8)";
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> fortune_documents(const std::string& directory) {
  std::vector<std::string> documents;
  for (const std::string& path : english_fortune_files(directory)) {
    std::vector<std::string> file_documents = read_documents(path, DocumentFormat::kFortune);
    std::move(file_documents.begin(), file_documents.end(), std::back_inserter(documents));
  }
  return documents;
}

DocumentSplit split_train_val(std::vector<std::string> documents, double val_fraction,
                              uint64_t seed) {
  LATTE_CHECK(val_fraction > 0.0 && val_fraction < 1.0)
      << "split_train_val: val_fraction = " << val_fraction << " must be in (0, 1)";
  const size_t n = documents.size();
  LATTE_CHECK(n >= 2) << "split_train_val: " << n
                      << " document(s); a train/val split needs at least 2";
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  for (size_t i = n - 1; i > 0; --i) {  // Fisher-Yates with the splitmix64 stream
    const uint64_t j = uniform_below(splitmix64_at(seed, n - 1 - i), i + 1);
    std::swap(order[i], order[j]);
  }
  const auto rounded = static_cast<size_t>(std::llround(static_cast<double>(n) * val_fraction));
  const size_t num_val = std::clamp<size_t>(rounded, 1, n - 1);
  DocumentSplit split;
  split.val.reserve(num_val);
  split.train.reserve(n - num_val);
  for (size_t k = 0; k < n; ++k) {
    (k < num_val ? split.val : split.train).push_back(std::move(documents[order[k]]));
  }
  return split;
}

DocumentSplit default_corpus(const std::string& directory) {
  return split_train_val(fortune_documents(directory), kDefaultValFraction, kDefaultSplitSeed);
}

PreparedCorpus write_corpus_shards(std::vector<std::string> documents, const std::string& out_dir,
                                   double val_fraction, uint64_t seed, TokenFormat format) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(out_dir, error);
  LATTE_CHECK(!error) << "output directory '" << out_dir
                      << "': cannot create it: " << error.message();
  LATTE_CHECK(fs::is_directory(out_dir))
      << "output directory '" << out_dir << "' exists but is not a directory";
  const DocumentSplit split = split_train_val(std::move(documents), val_fraction, seed);
  PreparedCorpus prepared;
  prepared.train_path = (fs::path(out_dir) / "train.bin").string();
  prepared.val_path = (fs::path(out_dir) / "val.bin").string();
  prepared.train_documents = static_cast<int64_t>(split.train.size());
  prepared.val_documents = static_cast<int64_t>(split.val.size());
  const std::vector<uint32_t> train = join_documents(split.train);
  const std::vector<uint32_t> val = join_documents(split.val);
  prepared.train_tokens = static_cast<int64_t>(train.size());
  prepared.val_tokens = static_cast<int64_t>(val.size());
  write_token_shard(prepared.train_path, train, format);
  write_token_shard(prepared.val_path, val, format);
  return prepared;
}

uint64_t splitmix64_at(uint64_t seed, uint64_t index) {
  return kernels::cpu::splitmix64(seed + index * 0x9E3779B97F4A7C15ULL);
}

uint64_t uniform_below(uint64_t random, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(random) * n) >> 64);
}

}  // namespace latte
