// `latte data`: `prepare` turns text files and/or the fortune corpus into byte-token llm.c
// shards (train.bin, val.bin, split by document); `info` reads token files and describes them.
#include <CLI/CLI.hpp>

#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/cli/commands.h"
#include "engine/error.h"
#include "engine/io/text_corpus.h"
#include "engine/io/token_dataset.h"
#include "engine/io/token_shard.h"

namespace latte::cli {
namespace {

struct PrepareOptions {
  std::vector<std::string> inputs;
  std::string input_format = "text";
  bool fortunes = false;
  std::string fortune_dir = kFortuneDirectory;
  std::string out_dir;
  double val_fraction = kDefaultValFraction;
  uint64_t seed = kDefaultSplitSeed;
  std::string format = "u16";
};

void run_prepare(const PrepareOptions& options) {
  LATTE_CHECK(!options.inputs.empty() || options.fortunes)
      << "data prepare: nothing to prepare: give --input FILES and/or --fortunes";
  LATTE_CHECK(options.val_fraction > 0.0 && options.val_fraction < 1.0)
      << "data prepare: --val-fraction " << options.val_fraction << " must be in (0, 1)";
  const TokenFormat format = parse_token_format(options.format, "data prepare --format");
  const DocumentFormat input_format =
      parse_document_format(options.input_format, "data prepare --input-format");
  std::vector<std::string> documents;
  for (const std::string& path : options.inputs) {
    std::vector<std::string> file_documents = read_documents(path, input_format);
    std::move(file_documents.begin(), file_documents.end(), std::back_inserter(documents));
  }
  if (options.fortunes) {
    std::vector<std::string> fortune = fortune_documents(options.fortune_dir);
    std::move(fortune.begin(), fortune.end(), std::back_inserter(documents));
  }
  LATTE_CHECK(documents.size() >= 2)
      << "data prepare: the inputs hold " << documents.size()
      << " document(s); a train/val split needs at least 2 (with --input-format "
      << options.input_format << ")";
  const PreparedCorpus prepared = write_corpus_shards(std::move(documents), options.out_dir,
                                                      options.val_fraction, options.seed, format);
  std::cout << "documents: " << prepared.train_documents + prepared.val_documents << " (train "
            << prepared.train_documents << ", val " << prepared.val_documents << ")\n"
            << prepared.train_path << ": " << prepared.train_tokens << " tokens ("
            << token_format_name(format) << ")\n"
            << prepared.val_path << ": " << prepared.val_tokens << " tokens ("
            << token_format_name(format) << ")\n";
}

std::string file_kind(size_t token_width) {
  if (token_width == 1) return "text (byte tokens)";
  return token_width == 2 ? "u16 shard" : "u32 shard";
}

void run_info(const std::vector<std::string>& patterns) {
  const TokenDataset dataset = TokenDataset::open(patterns);
  const std::vector<TokenDataset::File> files = dataset.files();
  for (const TokenDataset::File& file : files) {
    std::cout << file.path << ": " << file_kind(file.token_width) << ", " << file.num_tokens
              << " tokens\n";
  }
  std::cout << "total: " << dataset.num_tokens() << " tokens in " << files.size()
            << (files.size() == 1 ? " file" : " files") << ", max token id "
            << dataset.max_token_id() << " (" << dataset.max_token_path() << ")\n";
}

}  // namespace

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Prepare and inspect token data");
  data->require_subcommand(1);

  auto options = std::make_shared<PrepareOptions>();
  CLI::App* prepare = data->add_subcommand(
      "prepare", "Write OUT_DIR/train.bin and OUT_DIR/val.bin (llm.c shards of byte tokens)");
  prepare->add_option("--input", options->inputs, "Text files to split into documents");
  prepare
      ->add_option("--input-format", options->input_format,
                   "How --input files separate documents: text (blank lines) or fortune "
                   "(lines holding only %)")
      ->capture_default_str();
  prepare->add_flag("--fortunes", options->fortunes,
                    "Add every English fortune file (Debian's fortunes package)");
  prepare->add_option("--fortune-dir", options->fortune_dir, "Where the fortune files are")
      ->capture_default_str();
  prepare->add_option("--out-dir", options->out_dir, "Output directory (created when missing)")
      ->required();
  prepare
      ->add_option("--val-fraction", options->val_fraction,
                   "Fraction of the documents that go to val.bin")
      ->capture_default_str();
  prepare->add_option("--seed", options->seed, "Seed of the document shuffle")
      ->capture_default_str();
  prepare->add_option("--format", options->format, "Token width: u16 or u32")
      ->capture_default_str();
  prepare->callback([options] { run_prepare(*options); });

  auto patterns = std::make_shared<std::vector<std::string>>();
  CLI::App* info = data->add_subcommand(
      "info", "Describe token files (*.bin llm.c shards, *.txt text) and their max token id");
  info->add_option("files", *patterns, "Files or quoted globs")->required();
  info->callback([patterns] { run_info(*patterns); });
}

}  // namespace latte::cli
