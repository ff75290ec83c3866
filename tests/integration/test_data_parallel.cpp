// Data-parallel training through `mpirun -np 2 latte` (compiled when CMake found MPI and its
// launcher): two processes with batch b train as one process with batch 2b; only rank 0 writes
// files and prints; a stopped run resumes with the same number of processes and refuses another;
// an error on one rank ends the whole job instead of leaving the other waiting.
#ifdef LATTE_MPIRUN

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/read_metrics.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace latte {
namespace {

namespace fs = std::filesystem;
using test::read_metrics;

// The tiny MHA model for 10 steps. `like_one_process` routes its MoE layers deterministically:
// without router noise (each rank draws its own) and the Switch balance loss (a function of the
// whole batch's routing, so each rank's differs from the global one), 2 x 2 rows and 1 x 4 rows
// are the same computation up to summation order.
std::string train_args(const fs::path& run_dir, int batch_size, bool like_one_process) {
  return "train " +
         (fs::path(LATTE_SOURCE_DIR) / "tests/integration/configs/tiny_mha.toml").string() +
         " --set train.steps=10 --set eval.every=5 --set train.checkpoint_every=5" +
         (like_one_process ? " --set model.moe.router_noise_std=0 --set model.moe.aux_loss_alpha=0"
                           : "") +
         " --set train.batch_size=" + std::to_string(batch_size) +
         " --set output.dir=" + run_dir.string();
}

// `latte ARGS` in `processes` processes; a time limit turns a hang into a failure.
test::CommandResult run_latte_job(int processes, const std::string& args) {
  return test::run_shell("timeout 60 " + std::string(LATTE_MPIRUN) + " " +
                         std::to_string(processes) + " '" + LATTE_BINARY + "' " + args);
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "two processes with batch b train as one process with batch 2b, and rank 0 alone writes") {
  test::TempDir tmp;
  const fs::path one = tmp.path() / "one", two = tmp.path() / "two";
  const auto single = test::run_latte(train_args(one, 4, true) + " --no-progress");
  INFO(single.output);
  REQUIRE(single.exit_code == 0);
  const auto job = run_latte_job(2, train_args(two, 2, true));
  INFO(job.output);
  REQUIRE(job.exit_code == 0);

  // Each step both runs see the same 4 windows (the loader's global batch, split by rank), so
  // they differ only in fp32 rounding: a weight gradient sums 128 token rows in one process and
  // two sums of 64 averaged in two, and the GEMMs block differently. Those ulp-level (~1e-7)
  // differences pass through AdamW's normalized steps without growing over 10 steps (measured:
  // at most 5e-8 relative); 1e-5 leaves room for other BLAS kernels and catches any real change
  // (a wrong mean, other windows, unsynchronized weights differ by 1e-3 or more).
  const auto a = read_metrics(one), b = read_metrics(two);
  REQUIRE(a.size() == 10);
  REQUIRE(b.size() == 10);  // one line per step: rank 1 wrote none
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(b[i]["step"] == static_cast<int>(i + 1));
    CHECK(a[i].contains("val_loss") == b[i].contains("val_loss"));
    for (const char* key : {"loss", "lm_loss", "grad_norm", "val_loss"}) {
      if (!a[i].contains(key)) continue;
      const double x = a[i][key].get<double>(), y = b[i][key].get<double>();
      CHECK_MESSAGE(std::abs(y - x) <= 1e-5 * std::abs(x), key << ": " << x << " vs " << y);
    }
    // The MoE load of the global batch, from both ranks: rank 0's own would be half of it.
    REQUIRE(a[i]["moe"].size() == b[i]["moe"].size());
    for (size_t l = 0; l < a[i]["moe"].size(); ++l) {
      int64_t one_process = 0, two_processes = 0;
      for (const auto& n : a[i]["moe"][l]["load"]) one_process += n.get<int64_t>();
      for (const auto& n : b[i]["moe"][l]["load"]) two_processes += n.get<int64_t>();
      CHECK(two_processes == one_process);
    }
  }

  // One set of files, from rank 0; one progress log and one summary line on the console.
  CHECK(entries(two) ==
        std::set<std::string>{"checkpoints", "config.json", "metrics.jsonl", "summary.json"});
  CHECK(entries(two / "checkpoints") == std::set<std::string>{"step_00000005", "step_00000010"});
  CHECK(count_of(job.output, "step 10/10") == 1);
  CHECK(count_of(job.output, "completed at step 10") == 1);
}

// With router noise on: each rank's own noise stream must continue where it stopped.
TEST_CASE("a two-process run resumes with two processes only, repeating the uninterrupted run") {
  test::TempDir tmp;
  const fs::path full = tmp.path() / "full", split = tmp.path() / "split";
  REQUIRE(run_latte_job(2, train_args(full, 2, false) + " --no-progress").exit_code == 0);
  const auto stopped =
      run_latte_job(2, train_args(split, 2, false) + " --no-progress --stop-after 3");
  INFO(stopped.output);
  REQUIRE(stopped.exit_code == 130);  // both ranks stop at the same step, checkpointed

  const auto alone = test::run_latte("train --no-progress --resume " + split.string());
  INFO(alone.output);
  CHECK(alone.exit_code == 1);
  CHECK(alone.output.find("was written by a run of 2 process(es), this one has 1") !=
        std::string::npos);
  CHECK(alone.output.find("mpirun -np 2") != std::string::npos);

  const auto resumed = run_latte_job(2, "train --no-progress --resume " + split.string());
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  const auto a = read_metrics(full), b = read_metrics(split);
  REQUIRE(a.size() == 10);
  REQUIRE(b.size() == 10);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(a[i]["loss"].get<double>() == b[i]["loss"].get<double>());  // exact
    CHECK(a[i]["grad_norm"].get<double>() == b[i]["grad_norm"].get<double>());
  }
}

TEST_CASE("an error on rank 0 alone ends every process of the job") {
  test::TempDir tmp;
  const fs::path run = tmp.path() / "run";
  REQUIRE(test::run_latte(train_args(run, 2, true) + " --no-progress --stop-after 1").exit_code ==
          130);
  // Only rank 0 checks the folder for checkpoints; rank 1 goes on to wait in the first reduction.
  const auto job = run_latte_job(2, train_args(run, 2, true) + " --no-progress");
  INFO(job.output);
  CHECK(job.exit_code != 0);
  CHECK(job.exit_code != 124);  // not ended by the time limit
  CHECK(job.output.find("already holds checkpoints") != std::string::npos);
}

}  // namespace latte

#endif  // LATTE_MPIRUN
