// Byte tokenizer, document splitting (fortune "%" lines, blank-line paragraphs), the English
// fortune file listing, the seeded by-document train/val split and the prepared shards.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/io/text_corpus.h"
#include "engine/io/token_shard.h"
#include "tests/support/error_text.h"
#include "tests/support/temp_dir.h"

namespace latte {
namespace {

using test::error_of;

std::vector<std::string> numbered_documents(int n) {
  std::vector<std::string> documents;
  for (int i = 0; i < n; ++i) documents.push_back("document " + std::to_string(i) + "\n");
  return documents;
}

// Splits joined byte tokens back into documents at kEndOfDocumentToken.
std::vector<std::string> documents_of(const std::vector<uint32_t>& tokens) {
  std::vector<std::string> documents;
  for (const uint32_t token : tokens) {
    if (token == kEndOfDocumentToken) {
      documents.emplace_back();
    } else {
      REQUIRE(!documents.empty());
      documents.back().push_back(static_cast<char>(token));
    }
  }
  return documents;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("byte tokenizer maps each byte to its value and back") {
  const std::string text = "a\xC3\xA9\xE2\x80\x99z\xFF";  // a, é, ’ in UTF-8, z, byte 255
  const std::vector<uint32_t> tokens = encode_bytes(text);
  CHECK(tokens == std::vector<uint32_t>{97, 0xC3, 0xA9, 0xE2, 0x80, 0x99, 122, 255});
  const std::vector<int32_t> ids(tokens.begin(), tokens.end());
  CHECK(decode_bytes(ids) == text);
  const std::vector<int32_t> bad = {65, 256};
  CHECK(error_of([&] { decode_bytes(bad); }).find("token 256 at position 1 is not a byte") !=
        std::string::npos);
}

TEST_CASE("fortune files split into documents on lines holding only %") {
  test::TempDir dir;
  const std::string path = dir.write("jokes",
                                     "First fortune.\n"
                                     "%\n"
                                     "Second, line one\n"
                                     "  -- 100% sure\n"
                                     "%%\n"
                                     "%\n"
                                     "%\n"             // an empty document is dropped
                                     "Third\r\n%\r\n"  // CRLF separator
                                     "Last, no newline");
  const std::vector<std::string> documents = read_documents(path, DocumentFormat::kFortune);
  CHECK(documents == std::vector<std::string>{"First fortune.\n",
                                              "Second, line one\n  -- 100% sure\n%%\n", "Third\r\n",
                                              "Last, no newline"});
}

TEST_CASE("text files split into documents at blank lines") {
  const std::vector<std::string> documents = split_documents(
      "\nPara one,\nstill one.\n\n \t\n\nPara two\n%\n\n", DocumentFormat::kParagraphs);
  CHECK(documents == std::vector<std::string>{"Para one,\nstill one.\n", "Para two\n%\n"});
  CHECK(parse_document_format("fortune", "--input-format") == DocumentFormat::kFortune);
  CHECK(error_of([] {
          parse_document_format("csv", "--input-format");
        }).find("--input-format: unknown document format 'csv'") != std::string::npos);
  CHECK(error_of([] { read_documents("/nonexistent/latte.txt", DocumentFormat::kParagraphs); }) ==
        "text file '/nonexistent/latte.txt': no such file");
}

TEST_CASE("english fortune files skip index files, symlinks and subdirectories") {
  test::TempDir dir;
  const std::string beta = dir.write("beta", "b1\n%\nb2\n");
  const std::string alpha = dir.write("alpha", "a1\n%\na2\n%\na3\n");
  dir.write("alpha.dat", std::string("\x00\x00\x00\x02", 4));
  dir.write("off/rude", "skipped\n");
  dir.write("de/witze", "skipped\n");
  std::filesystem::create_symlink("alpha", dir.path() / "alpha.u8");
  std::filesystem::create_symlink("beta", dir.path() / "linked");

  CHECK(english_fortune_files(dir.path().string()) == std::vector<std::string>{alpha, beta});
  CHECK(fortune_documents(dir.path().string()) ==
        std::vector<std::string>{"a1\n", "a2\n", "a3\n", "b1\n", "b2\n"});

  test::TempDir empty;
  empty.write("only.dat", "x");
  CHECK(error_of([&] { english_fortune_files(empty.path().string()); }).find("holds no fortune") !=
        std::string::npos);
  CHECK(error_of([&] {
          english_fortune_files((empty.path() / "none").string());
        }).find("does not exist") != std::string::npos);
}

TEST_CASE("splitmix64 matches the reference generator") {
  // The first outputs of Vigna's reference splitmix64.c seeded with 1234567 (also the test
  // vector of Rust's rand_xoshiro): the split and the loader use exactly this stream.
  const uint64_t expected[] = {6457827717110365317ULL, 3203168211198807973ULL,
                               9817491932198370423ULL, 4593380528125082431ULL,
                               16408922859458223821ULL};
  for (uint64_t i = 0; i < 5; ++i) CHECK(splitmix64_at(1234567, i) == expected[i]);
  CHECK(uniform_below(0, 10) == 0);
  CHECK(uniform_below(UINT64_MAX, 10) == 9);
  CHECK(uniform_below(uint64_t{1} << 63, 10) == 5);
}

TEST_CASE("train/val split is by document, 90/10 and deterministic") {
  const std::vector<std::string> documents = numbered_documents(50);
  const DocumentSplit split = split_train_val(documents, 0.1, 7);
  CHECK(split.val.size() == 5);
  CHECK(split.train.size() == 45);
  // Every document lands whole in exactly one split.
  std::vector<std::string> all = split.train;
  all.insert(all.end(), split.val.begin(), split.val.end());
  CHECK(sorted(all) == sorted(documents));
  // Shuffled: the val set is not simply the first or last documents.
  const std::vector<std::string> first(documents.begin(), documents.begin() + 5);
  const std::vector<std::string> last(documents.end() - 5, documents.end());
  CHECK(sorted(split.val) != sorted(first));
  CHECK(sorted(split.val) != sorted(last));

  const DocumentSplit again = split_train_val(documents, 0.1, 7);
  CHECK(again.train == split.train);
  CHECK(again.val == split.val);
  const DocumentSplit other = split_train_val(documents, 0.1, 8);
  CHECK(other.val != split.val);

  // Tiny corpora keep at least one document on each side.
  const DocumentSplit tiny = split_train_val(numbered_documents(3), 0.1, 1);
  CHECK(tiny.val.size() == 1);
  CHECK(tiny.train.size() == 2);
}

TEST_CASE("train/val split refuses impossible requests") {
  CHECK(error_of([] {
          split_train_val(numbered_documents(10), 0.0, 1);
        }).find("val_fraction = 0 must be in (0, 1)") != std::string::npos);
  CHECK(error_of([] {
          split_train_val(numbered_documents(10), 1.0, 1);
        }).find("val_fraction = 1 must be in (0, 1)") != std::string::npos);
  CHECK(error_of([] {
          split_train_val(numbered_documents(1), 0.5, 1);
        }).find("1 document(s); a train/val split needs at least 2") != std::string::npos);
}

TEST_CASE("joined documents are each preceded by the end-of-document token") {
  const std::vector<std::string> documents = {"ab", "c\n"};
  CHECK(join_documents(documents) == std::vector<uint32_t>{0, 'a', 'b', 0, 'c', '\n'});
}

TEST_CASE("prepared shards hold the split documents as byte tokens") {
  test::TempDir dir;
  const std::vector<std::string> documents = numbered_documents(20);
  const std::string out_dir = (dir.path() / "nested" / "out").string();
  const PreparedCorpus prepared =
      write_corpus_shards(documents, out_dir, 0.25, 3, TokenFormat::kU32);
  CHECK(prepared.train_documents == 15);
  CHECK(prepared.val_documents == 5);

  const DocumentSplit split = split_train_val(documents, 0.25, 3);
  const TokenShard train = read_token_shard(prepared.train_path);
  const TokenShard val = read_token_shard(prepared.val_path);
  CHECK(train.format == TokenFormat::kU32);
  CHECK(documents_of(train.tokens) == split.train);
  CHECK(documents_of(val.tokens) == split.val);
  CHECK(prepared.train_tokens == static_cast<int64_t>(train.tokens.size()));
  CHECK(prepared.val_tokens == static_cast<int64_t>(val.tokens.size()));

  const std::string blocker = dir.write("file", "not a directory");
  const std::string message = error_of(
      [&] { write_corpus_shards(documents, blocker + "/out", 0.1, 3, TokenFormat::kU16); });
  CHECK(message.find("output directory '" + blocker + "/out': cannot create it") !=
        std::string::npos);
}

TEST_CASE("default corpus is the fortune documents split 90/10 with the default seed") {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 30; ++i) text += "fortune " + std::to_string(i) + "\n%\n";
  dir.write("cookie", text);
  const DocumentSplit corpus = default_corpus(dir.path().string());
  CHECK(corpus.val.size() == 3);
  CHECK(corpus.train.size() == 27);
  const DocumentSplit expected =
      split_train_val(fortune_documents(dir.path().string()), 0.1, kDefaultSplitSeed);
  CHECK(corpus.val == expected.val);
}

}  // namespace latte
