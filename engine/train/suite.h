// The experiment suite: every variant of a suite file trained under the same data and budget,
// each seed in its own run folder, then results.json / results.csv / report.md (+ plots) in the
// suite folder. A suite that is interrupted resumes where it stopped: finished runs are kept,
// an unfinished run continues from its last checkpoint.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/dist/communicator.h"

namespace latte {

struct SuiteOptions {
  std::string scale;                   // empty = the suite's default_scale
  int64_t repeats = 1;                 // seeds per variant
  std::vector<std::string> only;       // variant names; empty = all
  std::vector<std::string> overrides;  // --set applied to every variant after the scale
  std::string output_dir;              // empty = the suite's output_dir/<scale>
  bool progress = true;
  bool plots = true;          // run tools/plot_results.py when python3 + matplotlib exist
  bool profile = false;       // print each run's step time split (TrainOptions::profile)
  bool profile_host = false;  // on the host clock (TrainOptions::profile_host)
};

struct SuiteResult {
  std::string dir;  // the suite folder holding the report
  nlohmann::json results;
};

SuiteResult run_suite(const std::string& suite_file, const SuiteOptions& options,
                      Communicator& comm);

}  // namespace latte
