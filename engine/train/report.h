// The suite report: results.json (everything), results.csv (one row per variant × seed),
// report.md (one table row per variant, mean ± std over seeds, then one paragraph per question
// of the experiment stating what the numbers show) and the plots made by
// tools/plot_results.py.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace latte {

// `results` is the object run_suite builds: {suite, scale, scale_description, repeats,
// runs: [{variant, seed, run_dir, config, model, train, stats, summary}]}.
void write_report(const std::string& dir, const nlohmann::json& results);

// Runs tools/plot_results.py on the suite folder; prints a note (and carries on) when python3
// or matplotlib is missing.
void plot_report(const std::string& dir);

}  // namespace latte
