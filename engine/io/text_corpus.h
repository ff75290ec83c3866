// Byte-level text corpora: the byte tokenizer (token = byte value, vocabulary 256, token 0 =
// end of document), documents read from text and fortune files, the default corpus (the
// English fortune files of Debian's `fortunes` package), the seeded by-document train/val
// split, and splitmix64, the machine-independent PRNG that the split and the batch loader use.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/token_shard.h"

namespace latte {

// ---- byte tokenizer ----
inline constexpr int64_t kByteVocabSize = 256;
// Precedes every document when documents are joined (as GPT-2's <|endoftext|> does in llm.c).
// Byte 0 never occurs in text, so it marks document boundaries unambiguously.
inline constexpr uint32_t kEndOfDocumentToken = 0;

std::vector<uint32_t> encode_bytes(std::string_view text);
// Token ids back to bytes; a token outside [0, 256) throws latte::Error.
std::string decode_bytes(std::span<const int32_t> tokens);

// ---- documents ----
enum class DocumentFormat {
  kParagraphs,  // documents are separated by one or more blank (whitespace-only) lines
  kFortune,     // documents are separated by lines holding only "%" (fortune(6) files)
};
// Parses "text" (paragraphs) / "fortune"; anything else throws naming `what`.
DocumentFormat parse_document_format(std::string_view name, std::string_view what);

// Splits `text` into documents; each keeps its lines with their line ends. Documents that are
// empty or whitespace-only are dropped.
std::vector<std::string> split_documents(std::string_view text, DocumentFormat format);
// Reads the file at `path` and splits it; a missing or unreadable file throws naming it.
std::vector<std::string> read_documents(const std::string& path, DocumentFormat format);

// Every document in `documents`, each preceded by kEndOfDocumentToken, as byte tokens.
std::vector<uint32_t> join_documents(std::span<const std::string> documents);

// ---- the default corpus ----
inline constexpr const char* kFortuneDirectory = "/usr/share/games/fortunes";
inline constexpr double kDefaultValFraction = 0.1;
inline constexpr uint64_t kDefaultSplitSeed = 1234;

// The English fortune files in `directory`, sorted by name: regular files only, skipping the
// index files (*.dat), the *.u8 symlinks, every other symlink and every subdirectory (off/ and
// the other languages). Throws when the directory is missing or holds no fortune file.
std::vector<std::string> english_fortune_files(const std::string& directory = kFortuneDirectory);

// All documents of english_fortune_files(directory), file by file in name order.
std::vector<std::string> fortune_documents(const std::string& directory = kFortuneDirectory);

struct DocumentSplit {
  std::vector<std::string> train;
  std::vector<std::string> val;
};

// Shuffles the documents with splitmix64(seed) (Fisher-Yates) and puts the first
// round(n * val_fraction) of them, at least 1 and at most n - 1, in val and the rest in train,
// both in shuffled order. The same inputs give the same split on every machine. Needs
// 0 < val_fraction < 1 and at least 2 documents.
DocumentSplit split_train_val(std::vector<std::string> documents, double val_fraction,
                              uint64_t seed);

// The default corpus: fortune_documents(directory) split with kDefaultValFraction and
// kDefaultSplitSeed.
DocumentSplit default_corpus(const std::string& directory = kFortuneDirectory);

// What write_corpus_shards wrote.
struct PreparedCorpus {
  std::string train_path;
  std::string val_path;
  int64_t train_documents = 0;
  int64_t val_documents = 0;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
};

// Splits `documents` (split_train_val) and writes out_dir/train.bin and out_dir/val.bin as
// byte-token shards in `format` (join_documents), creating out_dir when needed.
PreparedCorpus write_corpus_shards(std::vector<std::string> documents, const std::string& out_dir,
                                   double val_fraction, uint64_t seed, TokenFormat format);

// ---- seeded randomness, identical on every machine ----
// The index-th output (from 0) of the splitmix64 generator seeded with `seed`: random access
// into the stream, so a position is all the state a sampler needs.
uint64_t splitmix64_at(uint64_t seed, uint64_t index);
// Maps a uniform 64-bit `random` to [0, n) by multiply-shift (Lemire); n > 0.
uint64_t uniform_below(uint64_t random, uint64_t n);

}  // namespace latte
