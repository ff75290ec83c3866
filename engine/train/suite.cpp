#include "engine/train/suite.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "engine/config/toml_document.h"
#include "engine/error.h"
#include "engine/io/atomic_file.h"
#include "engine/train/checkpoint.h"
#include "engine/train/report.h"
#include "engine/train/trainer.h"
#include "models/config_loader.h"
#include "models/model_stats.h"

namespace latte {

namespace fs = std::filesystem;

namespace {

struct SuiteFile {
  std::string name, default_scale, output_dir;
  std::vector<fs::path> variants;
  std::map<std::string, std::vector<std::string>> scales;  // name -> overrides
  // scale -> variant -> overrides applied after the scale's own (e.g. head counts of MHA)
  std::map<std::string, std::map<std::string, std::vector<std::string>>> per_variant;
  std::map<std::string, std::string> scale_descriptions;
};

SuiteFile read_suite(const std::string& path) {
  const ConfigDocument doc = ConfigDocument::load(path);
  SuiteFile s;
  TableReader root = doc.root();
  root.mark_used("suite");
  root.mark_used("scales");
  root.reject_unused();
  TableReader t = doc.table("suite");
  LATTE_CHECK(t.exists()) << path << ": no [suite] table";
  s.name = t.get_string("name", fs::path(path).stem().string());
  s.default_scale = t.get_string("default_scale", "cpu");
  s.output_dir = t.get_string("output_dir", "runs/" + s.name);
  const auto variants = t.get_string_list("variants", {});
  if (variants.empty()) t.fail("variants", "lists no variant config");
  const fs::path base = fs::path(path).parent_path();
  for (const auto& v : variants) {
    const fs::path p = base / v;
    if (!fs::exists(p)) t.fail("variants", "variant config " + p.string() + " does not exist");
    s.variants.push_back(p);
  }
  t.reject_unused();
  TableReader scales = doc.table("scales");
  for (const std::string& name : scales.keys()) {
    TableReader sc = scales.table(name);
    s.scales[name] = sc.get_string_list("set", {});
    s.scale_descriptions[name] = sc.get_string("description", "");
    TableReader pv = sc.table("per_variant");
    for (const std::string& variant : pv.keys()) {
      s.per_variant[name][variant] = pv.get_string_list(variant, {});
      bool known = false;
      for (const auto& v : s.variants) known = known || v.stem().string() == variant;
      if (!known) pv.fail(variant, "is not a variant of this suite");
    }
    sc.reject_unused();
  }
  if (!s.scales.count(s.default_scale))
    t.fail("default_scale", "names no [scales." + s.default_scale + "] table");
  return s;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  LATTE_CHECK(in.good()) << path.string() << ": cannot read";
  return nlohmann::json::parse(in);
}

}  // namespace

SuiteResult run_suite(const std::string& suite_file, const SuiteOptions& options,
                      Communicator& comm) {
  const SuiteFile suite = read_suite(suite_file);
  const std::string scale = options.scale.empty() ? suite.default_scale : options.scale;
  if (!suite.scales.count(scale)) {
    std::string known;
    for (auto& [n, s] : suite.scales) known += (known.empty() ? "" : ", ") + n;
    LATTE_FAIL() << "suite " << suite_file << ": unknown --scale '" << scale
                 << "' (known: " << known << ")";
  }
  LATTE_CHECK(options.repeats >= 1) << "suite: --repeats must be >= 1, got " << options.repeats;
  for (const auto& o : options.only) {
    bool found = false;
    for (const auto& v : suite.variants) found = found || v.stem().string() == o;
    LATTE_CHECK(found) << "suite " << suite_file << ": --only names unknown variant '" << o << "'";
  }
  const fs::path dir = options.output_dir.empty() ? fs::path(suite.output_dir) / scale
                                                  : fs::path(options.output_dir);

  nlohmann::json runs = nlohmann::json::array();
  for (const fs::path& variant : suite.variants) {
    const std::string name = variant.stem().string();
    if (!options.only.empty() &&
        std::find(options.only.begin(), options.only.end(), name) == options.only.end())
      continue;
    for (int64_t k = 0; k < options.repeats; ++k) {
      const int64_t seed = k + 1;
      const fs::path run_dir = dir / name / ("seed" + std::to_string(seed));
      ConfigDocument doc = ConfigDocument::load(variant.string());
      doc.apply_overrides(suite.scales.at(scale));
      if (suite.per_variant.count(scale) && suite.per_variant.at(scale).count(name))
        doc.apply_overrides(suite.per_variant.at(scale).at(name));
      doc.apply_overrides(options.overrides);
      doc.apply_override("train.seed=" + std::to_string(seed));
      doc.apply_override("output.dir=\"" + run_dir.string() + "\"");
      doc.apply_override("output.name=\"" + name + "\"");
      const RunConfig config = load_run_config(doc);

      nlohmann::json summary;
      const fs::path summary_path = run_dir / "summary.json";
      if (fs::exists(summary_path)) {
        if (comm.is_root())
          std::cout << "[" << name << " seed " << seed << "] already done" << std::endl;
        summary = read_json(summary_path);
      } else {
        TrainOptions t;
        t.resume = latest_checkpoint(run_dir.string()).has_value();
        t.progress = options.progress;
        t.profile = options.profile;
        t.profile_host = options.profile_host;
        if (comm.is_root())
          std::cout << "[" << name << " seed " << seed << "] "
                    << (t.resume ? "resuming" : "training") << " -> " << run_dir.string()
                    << std::endl;
        const TrainSummary s = train(config, t, comm);
        if (s.status != "completed") {
          SuiteResult partial;
          partial.dir = dir.string();
          return partial;  // interrupted: the next run of the suite resumes here
        }
        summary = s.to_json();
      }
      runs.push_back(
          {{"variant", name},
           {"seed", seed},
           {"run_dir", run_dir.string()},
           {"config", config.resolved},
           {"model", model_config_to_json(config.model)["model"]},
           {"train",
            {{"seq_len", config.train.seq_len},
             {"batch_size", config.train.batch_size},
             {"steps", config.train.steps},
             {"lr", config.train.lr}}},
           {"stats", model_stats_to_json(compute_model_stats(config.model, config.train.seq_len))},
           {"summary", summary}});
    }
  }

  SuiteResult result;
  result.dir = dir.string();
  result.results = {{"suite", suite.name},
                    {"scale", scale},
                    {"scale_description", suite.scale_descriptions.at(scale)},
                    {"repeats", options.repeats},
                    {"runs", runs}};
  if (comm.is_root()) {
    write_report(dir.string(), result.results);
    if (options.plots) plot_report(dir.string());
  }
  return result;
}

}  // namespace latte
