// Training end to end through the latte executable: the smoke suite and its report, the loss
// falling, bit-identical resume, and the messages for bad configs and bad data.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/device.h"
#include "engine/io/token_shard.h"
#include "engine/profiler.h"
#include "support/read_metrics.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

using namespace latte;
namespace fs = std::filesystem;
using latte::test::read_metrics;

namespace {

std::string source(const std::string& relative) {
  return (fs::path(LATTE_SOURCE_DIR) / relative).string();
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("the smoke suite trains every variant and writes the report") {
  test::TempDir tmp;
  const auto r = test::run_latte("suite " + source("configs/exp3/suite.toml") +
                                 " --scale smoke --no-progress --out " + tmp.path().string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto results = read_json(tmp.path() / "results.json");
  std::set<std::string> variants;
  for (const auto& run : results["runs"]) variants.insert(run["variant"].get<std::string>());
  CHECK(variants == std::set<std::string>{"baseline_mha", "q_lora", "flash_attention",
                                          "mixed_heads", "advanced_rope", "advanced_rope_yarn",
                                          "hybrid_lora", "deepseek_v3_small"});
  std::ifstream report(tmp.path() / "report.md");
  const std::string text((std::istreambuf_iterator<char>(report)), {});
  for (const auto& v : variants) CHECK(text.find("| " + v + " |") != std::string::npos);
  CHECK(fs::file_size(tmp.path() / "results.csv") > 0);

  // The loss falls clearly: the first step sits near ln 256 = 5.55 (uniform over bytes); a model
  // that has learned the byte distribution of English text is near its unigram entropy (about
  // 3.1 nats), so ending below 4.0 in every variant means every variant learned.
  for (const auto& run : results["runs"]) {
    const auto metrics = read_metrics(run["run_dir"].get<std::string>());
    REQUIRE(metrics.size() == 40);
    INFO(run["variant"]);
    CHECK(metrics.front()["lm_loss"].get<double>() > 5.0);
    CHECK(run["summary"]["final_train_loss"].get<double>() < 4.0);
    CHECK(run["summary"]["best_val_loss"].get<double>() < 4.0);
  }

  // Running the same suite again finds every run done and rewrites the report.
  const auto again =
      test::run_latte("suite " + source("configs/exp3/suite.toml") +
                      " --scale smoke --no-progress --no-plots --out " + tmp.path().string());
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("already done") != std::string::npos);
}

TEST_CASE(
    "an interrupted run resumed from its checkpoint repeats the uninterrupted losses bit for bit") {
  for (const char* config :
       {"tests/integration/configs/tiny_moe.toml", "tests/integration/configs/tiny_v3.toml"}) {
    INFO(config);
    test::TempDir tmp;
    const std::string full = (tmp.path() / "full").string();
    const std::string split = (tmp.path() / "split").string();
    const std::string base = "train " + source(config) + " --no-progress --set ";
    REQUIRE(test::run_latte(base + "output.dir=" + full).exit_code == 0);
    const auto stopped = test::run_latte(base + "output.dir=" + split + " --stop-after 5");
    INFO(stopped.output);
    REQUIRE(stopped.exit_code == 130);
    const auto resumed = test::run_latte("train --no-progress --resume " + split);
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    const auto a = read_metrics(full), b = read_metrics(split);
    REQUIRE(a.size() == 12);
    REQUIRE(b.size() == 12);
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i]["step"] == b[i]["step"]);
      CHECK(a[i]["loss"].get<double>() == b[i]["loss"].get<double>());  // exact
      CHECK(a[i]["grad_norm"].get<double>() == b[i]["grad_norm"].get<double>());
    }
    CHECK(read_json(fs::path(full) / "summary.json")["best_val_loss"] ==
          read_json(fs::path(split) / "summary.json")["best_val_loss"]);
  }
}

TEST_CASE("bad configs and bad data give a message naming the file, key or problem") {
  test::TempDir tmp;
  const std::string config = source("tests/integration/configs/tiny_moe.toml");
  std::vector<uint32_t> ids(100, 65);
  write_token_shard(tmp.write("good.bin", ""), ids, TokenFormat::kU16);
  const auto good = tmp.path() / "good.bin";
  auto bytes_of = [&](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  std::string wrong_magic = bytes_of(good), wrong_version = bytes_of(good);
  wrong_magic[0] = 1;
  wrong_version[4] = 9;
  const std::string truncated = bytes_of(good).substr(0, 256 * 4 + 50);
  std::vector<uint32_t> big(100, 300);
  write_token_shard(tmp.write("big.bin", ""), big, TokenFormat::kU16);

  struct Case {
    std::string name, args, expected;
    int exit_code = 1;  // latte::Error; command-line usage errors exit with CLI11's codes
  };
  const std::string train =
      "train " + config + " --no-progress --set output.dir=" + (tmp.path() / "run").string();
  std::vector<Case> cases = {
      {"wrong magic",
       train + " --set 'data.train=[\"" + tmp.write("magic.bin", wrong_magic) + "\"]'", "magic"},
      {"wrong version",
       train + " --set 'data.train=[\"" + tmp.write("version.bin", wrong_version) + "\"]'",
       "version"},
      {"truncated shard",
       train + " --set 'data.train=[\"" + tmp.write("short.bin", truncated) + "\"]'", "truncated"},
      {"empty text file", train + " --set 'data.train=[\"" + tmp.write("empty.txt", "") + "\"]'",
       "empty.txt"},
      {"vocab mismatch",
       train + " --set 'data.train=[\"" + (tmp.path() / "big.bin").string() + "\"]'",
       "model.vocab_size = 256"},
      {"missing data file", train + " --set 'data.val=[\"/nonexistent/val.bin\"]'",
       "/nonexistent/val.bin"},
      {"missing config", "train /nonexistent/config.toml", "/nonexistent/config.toml"},
      {"unknown key", train + " --set train.lr_max=1", "train: unknown key 'lr_max'"},
      {"bad value", train + " --set train.batch_size=0", "train.batch_size"},
      {"unwritable output folder",
       "train " + config + " --no-progress --set output.dir=" + tmp.write("file", "x") + "/run",
       "output.dir"},
      {"resume without checkpoint", "train --resume " + (tmp.path() / "nothing").string(),
       "config.json"},
      // lr 1e30 without clipping: the first update sends weights to ~1e30, the next forward
      // overflows; the run stops and names its last good checkpoint (none yet).
      {"non-finite loss",
       train + " --set train.lr=1e30 --set train.min_lr=0 --set train.grad_clip=0",
       "non-finite loss"},
      {"unknown suite scale", "suite " + source("configs/exp3/suite.toml") + " --scale huge",
       "unknown --scale 'huge'"},
      {"bf16 on the cpu", train + " --set train.dtype=\\\"bfloat16\\\"",
       "needs train.device = \"cuda\""},
      {"unknown device", train + " --device gpu", "--device: gpu not in {cpu,cuda}", 105},
      {"profile outside bench train", "bench linear --profile",
       "--profile and --profile-host apply to the train benchmark only"},
      {"host profile outside bench train", "bench moe --profile-host",
       "--profile and --profile-host apply to the train benchmark only"},
  };
  if (!cuda_available()) {
    cases.push_back({"cuda without a GPU", train + " --device cuda", "no usable CUDA device"});
    cases.push_back({"profiling cuda without a GPU", train + " --profile --device cuda",
                     "no usable CUDA device"});
    cases.push_back({"host profiling cuda without a GPU", train + " --profile-host --device cuda",
                     "no usable CUDA device"});
  }
  for (const Case& c : cases) {
    INFO(c.name);
    const auto r = test::run_latte(c.args);
    INFO(r.output);
    CHECK(r.exit_code == c.exit_code);
    CHECK(r.output.find(c.expected) != std::string::npos);
  }
}

TEST_CASE("train --profile prints the step time split: every category, their sum and the rest") {
  // --profile-host is --profile on the host clock, which the CPU uses anyway.
  for (const std::string flag : {"--profile", "--profile-host"}) {
    INFO(flag);
    test::TempDir tmp;
    const auto r = test::run_latte("train " + source("tests/integration/configs/tiny_mha.toml") +
                                   " --no-progress " + flag +
                                   " --set output.dir=" + (tmp.path() / "run").string());
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    // 12 steps; the first warms caches and is not profiled.
    const std::string heading =
        "step time split over 11 steps (the session's first, which warms caches, is not "
        "profiled), ";
    const size_t header = r.output.find(heading);
    REQUIRE(header != std::string::npos);
    CHECK(r.output.find("(host wall time, innermost scope wins)", header) != std::string::npos);
    const double wall = std::stod(r.output.substr(header + heading.size()));
    // The seconds on the line that starts with `label` after the header.
    auto seconds_of = [&](const std::string& label) {
      const size_t at = r.output.find("\n  " + label, header);
      REQUIRE_MESSAGE(at != std::string::npos, "no line for " << label);
      return std::stod(r.output.substr(at + 3 + label.size()));
    };
    double sum = 0;
    for (int c = 0; c < static_cast<int>(profiler::Category::kCount); ++c) {
      const double s = seconds_of(profiler::category_name(static_cast<profiler::Category>(c)));
      CHECK(s >= 0);
      sum += s;
    }
    // Printed with 3 decimals: each of the 11 categories rounds by at most 0.0005 s.
    CHECK(std::abs(seconds_of("sum of the categories") - sum) <= 11 * 0.0005 + 1e-9);
    CHECK(seconds_of("sum of the categories") <= wall);
    // "other" is the unrounded wall minus the unrounded sum: two more roundings.
    CHECK(std::abs(seconds_of("other (outside every scope)") - (wall - sum)) <= 13 * 0.0005 + 1e-9);
  }
}

TEST_CASE("train --profile over a one-step session says there is nothing to profile") {
  test::TempDir tmp;
  const auto r = test::run_latte("train " + source("tests/integration/configs/tiny_mha.toml") +
                                 " --no-progress --profile --set train.steps=1 --set output.dir=" +
                                 (tmp.path() / "run").string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("no step time split: the session ran one step") != std::string::npos);
}

TEST_CASE("SIGTERM checkpoints and exits cleanly, and the run then resumes") {
  test::TempDir tmp;
  const std::string dir = (tmp.path() / "run").string();
  const std::string script =
      "'" + std::string(LATTE_BINARY) + "' train " +
      source("tests/integration/configs/tiny_moe.toml") +
      " --no-progress --set train.steps=100000 --set output.dir=" + dir +
      " & pid=$!; for i in $(seq 600); do [ -s " + dir +
      "/metrics.jsonl ] && break; sleep 0.05; done; kill -TERM $pid; wait $pid; echo exit=$?";
  const auto r = test::run_shell("bash -c '" + [&] {
    std::string quoted;
    for (char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted;
  }() + "'");
  INFO(r.output);
  CHECK(r.output.find("exit=130") != std::string::npos);
  const auto steps = read_metrics(dir).size();
  CHECK(steps >= 1);
  REQUIRE(fs::exists(fs::path(dir) / "checkpoints"));
  const auto resumed = test::run_latte("train --no-progress --stop-after 2 --resume " + dir);
  INFO(resumed.output);
  CHECK(resumed.exit_code == 130);
  CHECK(read_metrics(dir).size() == steps + 2);
}

TEST_CASE("latte config show prints the resolved, validated config") {
  const auto r = test::run_latte("config show " + source("configs/exp3/variants/q_lora.toml") +
                                 " --set train.steps=7");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("q_lora_rank = 64") != std::string::npos);
  CHECK(r.output.find("steps = 7") != std::string::npos);
  CHECK(r.output.find("aux_loss_alpha = 0.01") != std::string::npos);  // from base.toml
  CHECK(r.output.find("inherit") == std::string::npos);
  const auto bad = test::run_latte("config show " + source("configs/exp3/variants/q_lora.toml") +
                                   " --set model.attention.head_dim=64");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("head_dim") != std::string::npos);
}
