// Tests of the suite report (engine/train/report): results.csv rows and quoting, the report.md
// table (means, sample standard deviations, n/a), the question paragraphs computed from the
// numbers (a changed input changes the sentence), the wording when variants are missing, the
// plot links, bad input, and plot_report with and without a working tools/plot_results.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/train/report.h"
#include "support/read_file.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using latte::test::read_file;
using latte::test::TempDir;
using nlohmann::json;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The text of the report.md section whose heading starts with "### <tag>".
std::string section(const std::string& md, const std::string& tag) {
  const size_t start = md.find("### " + tag);
  if (start == std::string::npos) return "";
  const size_t end = md.find("### ", start + 4);
  return md.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// The table row of a variant.
std::string row(const std::string& md, const std::string& variant) {
  for (const auto& line : lines_of(md))
    if (line.rfind("| " + variant + " |", 0) == 0) return line;
  return "";
}

// One metrics.jsonl line; `moe` gives per-layer (max_over_mean, cv) pairs, empty for none.
std::string metric_line(int step, double loss, const std::vector<std::pair<double, double>>& moe,
                        double val_loss = -1) {
  json m = {{"step", step},          {"loss", loss + 0.01},   {"lm_loss", loss},
            {"aux_loss", 0.01},      {"mtp_loss", 0.0},       {"lr", 1e-3},
            {"grad_norm", 1.0},      {"tokens_per_s", 500.0}, {"step_time_s", 0.1},
            {"peak_bytes", 1 << 20}, {"rss_bytes", 1 << 22}};
  if (!moe.empty()) {
    json layers = json::array();
    for (size_t i = 0; i < moe.size(); ++i)
      layers.push_back({{"layer", i},
                        {"load", {10, 20, 30, 40}},
                        {"max_over_mean", moe[i].first},
                        {"cv", moe[i].second},
                        {"dropped", 0},
                        {"seq_aux_loss", 0.0},
                        {"switch_loss", 1.0},
                        {"bias", {0.0, 0.0, 0.0, 0.0}}});
    m["moe"] = layers;
  }
  if (val_loss > 0) {
    m["val_loss"] = val_loss;
    m["val_ppl"] = std::exp(val_loss);
  }
  return m.dump() + "\n";
}

// Per-variant numbers of the synthetic suite; the values of the two seeds are listed in order.
struct VariantSpec {
  std::string name;
  json model, stats;
  std::vector<double> best_val_loss, tokens_per_second, ppl_1x, ppl_2x, ppl_4x;
  double peak_mib;
  std::vector<std::pair<double, double>> last_moe;  // (max_over_mean, cv) per layer, last step
};

json mla(int q, int kv, int nope, int rope, int v, bool bias, const char* impl) {
  return {{"type", "mla"},          {"num_attention_heads", 4}, {"q_lora_rank", q},
          {"kv_lora_rank", kv},     {"qk_nope_head_dim", nope}, {"qk_rope_head_dim", rope},
          {"v_head_dim", v},        {"attention_bias", bias},   {"impl", impl},
          {"rope_interleave", true}};
}

json moe(double bias_speed, double aux_alpha, double seq_alpha) {
  return {{"n_routed_experts", 4},           {"num_experts_per_tok", 2},
          {"bias_update_speed", bias_speed}, {"aux_loss_alpha", aux_alpha},
          {"seq_aux_loss_alpha", seq_alpha}, {"scoring_func", "softmax"}};
}

json model(json attention, const char* rope_type, double factor, json moe_table) {
  return {{"hidden_size", 64},
          {"num_hidden_layers", 2},
          {"attention", attention},
          {"rope", {{"type", rope_type}, {"factor", factor}, {"theta", 10000.0}}},
          {"moe", moe_table},
          {"mtp", {{"num_layers", 0}, {"loss_weight", 0.3}}}};
}

json stats(int64_t total, int64_t attention, double flops, int64_t kv) {
  return {{"params_total", total},
          {"params_active", total * 3 / 5},
          {"params_mtp", 0},
          {"attention_params_per_layer", attention},
          {"flops_per_token", flops},
          {"kv_cache_bytes_per_token", kv},
          {"seq_len", 32}};
}

std::vector<VariantSpec> synthetic_variants() {
  return {
      {"baseline_mha",
       model({{"type", "mha"},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 4},
              {"head_dim", 16},
              {"attention_bias", false},
              {"impl", "flash"}},
             "default", 1.0, moe(0.0, 0.01, 0.0)),
       stats(1000000, 4000, 2.5e6, 2048),
       {2.00, 2.20},
       {1000, 1100},
       {8, 8},
       {12, 12},
       {24, 24},
       100,
       {{1.5, 0.3}, {1.7, 0.5}}},
      {"q_lora",
       model(mla(64, 32, 0, 64, 64, true, "naive"), "default", 1.0, moe(0.0, 0.01, 0.0)),
       stats(900000, 1000, 2.0e6, 640),
       {1.90, 1.96},
       {500, 600},
       {7, 7},
       {9, 9},
       {14, 14},
       300,
       {{1.2, 0.2}, {1.6, 0.2}}},
      {"deepseek_v3_small",
       model(mla(128, 64, 64, 32, 64, false, "flash"), "yarn", 4.0, moe(0.001, 0.0, 0.0001)),
       stats(1200000, 3000, 3.0e6, 192),
       {2.04, 2.10},
       {800, 900},
       {8, 8},
       {9, 9},
       {10, 10},
       200,
       {{1.1, 0.05}}},
  };
}

// The results object of a two-seed suite over the synthetic variants, with metrics.jsonl files
// under `tmp`. Earlier metric lines carry other MoE values than the last one, and the second
// seed's log ends with a line cut short, so only the last complete MoE line may be used.
json synthetic_results(const TempDir& tmp, const std::vector<VariantSpec>& specs) {
  json runs = json::array();
  for (const VariantSpec& v : specs)
    for (int k = 0; k < 2; ++k) {
      const int seed = k + 1;
      const std::string rel = v.name + "/seed" + std::to_string(seed);
      std::string metrics = metric_line(1, 3.0, {{3.0, 0.9}}) +
                            metric_line(2, 2.5, {{2.5, 0.8}}, v.best_val_loss[k] + 0.1) +
                            metric_line(3, 2.2, v.last_moe);
      if (seed == 2) metrics += "{\"step\": 4, \"loss\": 2.1, \"moe\": [{\"max_ov";
      tmp.write(rel + "/metrics.jsonl", metrics);
      const double best = v.best_val_loss[k];
      json summary = {{"status", "completed"},
                      {"steps", 3},
                      {"final_train_loss", best + 0.05},
                      {"best_val_loss", best},
                      {"best_val_ppl", std::exp(best)},
                      {"tokens_per_second", v.tokens_per_second[k]},
                      {"wall_seconds", 10.0 * seed},
                      {"peak_bytes", static_cast<int64_t>(v.peak_mib * 1024 * 1024)},
                      {"params_total", v.stats["params_total"]},
                      {"length_extrapolation",
                       {{"1", {{"val_loss", std::log(v.ppl_1x[k])}, {"val_ppl", v.ppl_1x[k]}}},
                        {"2", {{"val_loss", std::log(v.ppl_2x[k])}, {"val_ppl", v.ppl_2x[k]}}},
                        {"4", {{"val_loss", std::log(v.ppl_4x[k])}, {"val_ppl", v.ppl_4x[k]}}}}}};
      runs.push_back({{"variant", v.name},
                      {"seed", seed},
                      {"run_dir", (tmp.path() / rel).string()},
                      {"config", {{"model", v.model}}},
                      {"model", v.model},
                      {"train", {{"seq_len", 32}, {"batch_size", 4}, {"steps", 3}, {"lr", 1e-3}}},
                      {"stats", v.stats},
                      {"summary", summary}});
    }
  return {{"suite", "exp3"},
          {"scale", "smoke"},
          {"scale_description", "seconds per variant"},
          {"repeats", 2},
          {"runs", runs}};
}

// The runs of the named variants only, as `latte suite --only` leaves them.
json only(json results, const std::vector<std::string>& keep) {
  json runs = json::array();
  for (const json& r : results["runs"])
    if (std::find(keep.begin(), keep.end(), r["variant"].get<std::string>()) != keep.end())
      runs.push_back(r);
  results["runs"] = runs;
  return results;
}

std::string report_of(const fs::path& dir, const json& results) {
  latte::write_report(dir.string(), results);
  return read_file(dir / "report.md");
}

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Captures std::cout for the lifetime of the object.
class CaptureCout {
 public:
  CaptureCout() : old_(std::cout.rdbuf(buffer_.rdbuf())) {}
  CaptureCout(const CaptureCout&) = delete;
  CaptureCout& operator=(const CaptureCout&) = delete;
  ~CaptureCout() { std::cout.rdbuf(old_); }
  std::string text() const { return buffer_.str(); }

 private:
  std::ostringstream buffer_;
  std::streambuf* old_;
};

bool python_with_matplotlib() {
  return fs::exists("/usr/bin/python3") &&
         std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("write_report: results.json holds the results object unchanged") {
  TempDir tmp;
  const json results = synthetic_results(tmp, synthetic_variants());
  latte::write_report((tmp.path() / "suite").string(), results);
  std::ifstream in(tmp.path() / "suite" / "results.json");
  CHECK(json::parse(in) == results);
}

TEST_CASE("write_report: results.csv has one row per variant and seed with the fifteen columns") {
  TempDir tmp;
  json results = synthetic_results(tmp, synthetic_variants());
  results["runs"][3]["summary"]["best_val_loss"] = nullptr;  // q_lora seed 2: never measured
  latte::write_report(tmp.path().string(), results);
  const auto lines = lines_of(read_file(tmp.path() / "results.csv"));
  REQUIRE(lines.size() == 7);
  CHECK(lines[0] ==
        "variant,seed,params_total,params_active,attention_params_per_layer,flops_per_token,"
        "kv_cache_bytes_per_token,final_train_loss,best_val_loss,best_val_ppl,ppl_2x,ppl_4x,"
        "tokens_per_second,peak_bytes,wall_seconds");
  // q_lora seed 1: integers as written, doubles with 10 significant digits.
  CHECK(lines[3] == "q_lora,1,900000,540000,1000,2000000,640,1.95,1.9," + [] {
    char b[32];
    std::snprintf(b, sizeof b, "%.10g", std::exp(1.90));
    return std::string(b);
  }() + ",9,14,500,314572800,10");
  // The missing loss is an empty field, the row keeps its fifteen columns.
  CHECK(lines[4].rfind("q_lora,2,900000,540000,1000,2000000,640,2.01,,", 0) == 0);
  for (const auto& line : lines) CHECK(std::count(line.begin(), line.end(), ',') == 14);
}

TEST_CASE("write_report: CSV fields with commas or quotes are quoted") {
  TempDir tmp;
  json results = only(synthetic_results(tmp, synthetic_variants()), {"q_lora"});
  results["runs"][0]["variant"] = "odd, \"name\"";
  latte::write_report(tmp.path().string(), results);
  const auto lines = lines_of(read_file(tmp.path() / "results.csv"));
  REQUIRE(lines.size() == 3);
  CHECK(lines[1].rfind("\"odd, \"\"name\"\"\",1,900000,", 0) == 0);
}

TEST_CASE("write_report: the table shows mean ± sample std over seeds, one row per variant") {
  TempDir tmp;
  const std::string md = report_of(tmp.path(), synthetic_results(tmp, synthetic_variants()));
  CHECK(md.find("# latte suite `exp3`, scale `smoke`") != std::string::npos);
  CHECK(md.find("Scale `smoke`: seconds per variant. Budget per run: 3 steps × batch 4 × seq_len "
                "32 = 384 tokens.") != std::string::npos);
  CHECK(md.find("mean ± sample standard deviation (n − 1)") != std::string::npos);
  // baseline_mha best val loss 2.00 and 2.20: mean 2.1, sample std sqrt(0.02) = 0.1414 (the
  // population std would read 0.1000).
  const std::string base = row(md, "baseline_mha");
  CHECK(base ==
        "| baseline_mha | 1.00M | 600.0k | 4.0k | 2.50M | 2048 | 2.1500 ± 0.1414 | 2.1000 ± "
        "0.1414 | " +
            [] {
              char b[64];
              const double a = std::exp(2.0), c = std::exp(2.2), m = (a + c) / 2;
              std::snprintf(b, sizeof b, "%.2f ± %.2f", m,
                            std::sqrt(((a - m) * (a - m) + (c - m) * (c - m))));
              return std::string(b);
            }() +
            " | 12.00 ± 0.00 | 24.00 ± 0.00 | 1050 ± 71 | 100.0 ± 0.0 | 15.0 ± 7.1 |");
  // One row per variant, in the order of the runs.
  const size_t a = md.find("| baseline_mha |"), b = md.find("| q_lora |"),
               c = md.find("| deepseek_v3_small |");
  CHECK(a < b);
  CHECK(b < c);
  CHECK(md.find("| q_lora |", b + 1) == std::string::npos);
}

TEST_CASE("write_report: one seed shows bare values, missing values read n/a") {
  TempDir tmp;
  json results = synthetic_results(tmp, synthetic_variants());
  json runs = json::array();
  for (const json& r : results["runs"])
    if (r["seed"] == 1) runs.push_back(r);
  results["runs"] = runs;
  results["repeats"] = 1;
  results["runs"][1]["summary"]["length_extrapolation"].erase("4");
  const std::string md = report_of(tmp.path(), results);
  CHECK(md.find("One seed per variant") != std::string::npos);
  CHECK(md.find("±") == std::string::npos);
  CHECK(row(md, "q_lora").find("| 1.9000 | " + [] {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", std::exp(1.9));
    return std::string(b);
  }() + " | 9.00 | n/a | 500 |") != std::string::npos);
}

TEST_CASE("report paragraph (a): ratios and loss differences against baseline_mha") {
  TempDir tmp;
  json results = synthetic_results(tmp, synthetic_variants());
  std::string a = section(report_of(tmp.path(), results), "(a)");
  // q_lora: 1000/4000 attention params, 640/2048 KV bytes, loss 1.93 - 2.10; the seed spread
  // (std up to 0.1414) is smaller than 0.17.
  CHECK(a.find("`q_lora` (q_lora_rank 64, kv_lora_rank 32) has 0.25× the attention parameters "
               "and 0.31× the KV cache, best val loss 1.9300 (-0.1700, beyond the "
               "seed-to-seed std of 0.1414)") != std::string::npos);
  CHECK(a.find("`deepseek_v3_small` (q_lora_rank 128, kv_lora_rank 64) has 0.75× the attention "
               "parameters and 0.09× the KV cache, best val loss 2.0700 (-0.0300, within") !=
        std::string::npos);
  CHECK(a.find("The smallest KV cache is `deepseek_v3_small`'s (0.09× the baseline's); the "
               "lowest best val loss among the low-rank variants is `q_lora`'s (-0.1700") !=
        std::string::npos);

  // Changing the inputs changes the sentence.
  for (int k : {2, 3}) results["runs"][k]["stats"]["attention_params_per_layer"] = 2000;
  for (int k : {2, 3}) results["runs"][k]["summary"]["best_val_loss"] = 2.5;
  a = section(report_of(tmp.path(), results), "(a)");
  CHECK(a.find("has 0.50× the attention parameters") != std::string::npos);
  CHECK(a.find("best val loss 2.5000 (+0.4000") != std::string::npos);
  CHECK(a.find("lowest best val loss among the low-rank variants is `deepseek_v3_small`'s") !=
        std::string::npos);
}

TEST_CASE("report paragraph (b): flash vs naive throughput and memory") {
  TempDir tmp;
  json results = synthetic_results(tmp, synthetic_variants());
  std::string b = section(report_of(tmp.path(), results), "(b)");
  // flash: baseline_mha 1050 and deepseek_v3_small 850 tokens/s (mean 950), 100 and 200 MiB;
  // naive: q_lora 550 tokens/s, 300 MiB.
  CHECK(b.find("impl=flash: `baseline_mha` 1050 tokens/s, 100.0 MiB; `deepseek_v3_small` 850 "
               "tokens/s, 200.0 MiB. impl=naive: `q_lora` 550 tokens/s, 300.0 MiB.") !=
        std::string::npos);
  CHECK(b.find("flash runs at 1.73× the tokens/s of naive (950 vs 550) with 0.50× the peak "
               "memory (150.0 vs 300.0 MiB)") != std::string::npos);
  CHECK(b.find("`latte bench attention`") != std::string::npos);
  CHECK(b.find("also differ") != std::string::npos);
  results["runs"][2]["summary"]["tokens_per_second"] = 1650;  // q_lora mean (1650 + 600) / 2
  b = section(report_of(tmp.path(), results), "(b)");
  CHECK(b.find("flash runs at 0.84× the tokens/s of naive (950 vs 1125)") != std::string::npos);
}

TEST_CASE("report paragraph (c): mixed head dims against q_lora, with what is missing") {
  TempDir tmp;
  std::vector<VariantSpec> specs = synthetic_variants();
  std::string c = section(report_of(tmp.path(), synthetic_results(tmp, specs)), "(c)");
  CHECK(c.find("`mixed_heads` and `hybrid_lora` are not in this run, so there is nothing to "
               "compare") != std::string::npos);

  // A mixed_heads variant: the sentence gives its ratios against q_lora.
  VariantSpec mixed = specs[1];
  mixed.name = "mixed_heads";
  mixed.model["attention"]["qk_nope_head_dim"] = 16;
  mixed.model["attention"]["qk_rope_head_dim"] = 32;
  mixed.stats = stats(880000, 900, 1.8e6, 448);
  mixed.best_val_loss = {2.00, 2.06};
  mixed.tokens_per_second = {1100, 1200};
  specs.push_back(mixed);
  c = section(report_of(tmp.path(), synthetic_results(tmp, specs)), "(c)");
  CHECK(c.find("(`q_lora`: 0/64/64)") != std::string::npos);
  CHECK(c.find("`mixed_heads` (16/32/64) has 0.90× the attention parameters per layer of "
               "`q_lora`, 0.90× its FLOPs/token, 0.70× its KV cache and 2.09× its tokens/s; best "
               "val loss 2.0300 vs 1.9300 (+0.1000, beyond the seed-to-seed std of 0.0424)") !=
        std::string::npos);
  CHECK(c.find("`hybrid_lora` is not in this run.") != std::string::npos);
}

TEST_CASE("report paragraph (d): perplexity growth with length, scaled vs default RoPE") {
  TempDir tmp;
  std::vector<VariantSpec> specs = synthetic_variants();
  std::string d = section(report_of(tmp.path(), synthetic_results(tmp, specs)), "(d)");
  CHECK(d.find("`deepseek_v3_small` (yarn ×4, theta 10000) 8.00, 9.00, 10.00 (4×/1×: 1.25)") !=
        std::string::npos);
  // Default RoPE: baseline_mha 24/8 = 3, q_lora 14/7 = 2: mean growth 2.5.
  CHECK(d.find("The default-RoPE variants (`baseline_mha` and `q_lora`) average 10.50 at 2× and "
               "19.00 at 4× (mean 4×/1×: 2.50).") != std::string::npos);
  CHECK(d.find("`deepseek_v3_small`'s 4×/1× ratio, 1.25, is lower than the default-RoPE mean "
               "(2.50).") != std::string::npos);
  CHECK(d.find("`advanced_rope` and `advanced_rope_yarn` are not in this run.") !=
        std::string::npos);
  specs[2].ppl_4x = {40, 40};
  d = section(report_of(tmp.path(), synthetic_results(tmp, specs)), "(d)");
  CHECK(d.find("4×/1× ratio, 5.00, is higher than the default-RoPE mean (2.50)") !=
        std::string::npos);
  // Without a 4× evaluation (the smoke scale) the growth is taken at 2×: default RoPE
  // (12/8 + 9/7) / 2 = 1.39.
  specs[2].ppl_2x = {8.8, 8.8};  // deepseek_v3_small 2×/1×: 8.8 / 8 = 1.10
  json no_4x = synthetic_results(tmp, specs);
  for (json& r : no_4x["runs"]) r["summary"]["length_extrapolation"].erase("4");
  d = section(report_of(tmp.path(), no_4x), "(d)");
  CHECK(d.find("average 10.50 at 2× and n/a at 4× (mean 2×/1×: 1.39).") != std::string::npos);
  CHECK(d.find("2×/1× ratio, 1.10, is lower than the default-RoPE mean (1.39)") !=
        std::string::npos);
  for (json& r : no_4x["runs"]) r["summary"]["length_extrapolation"].erase("2");
  d = section(report_of(tmp.path(), no_4x), "(d)");
  CHECK(d.find("the growth with length cannot be compared") != std::string::npos);
  CHECK(d.find("ratio") == std::string::npos);
  d = section(report_of(tmp.path(), only(synthetic_results(tmp, specs), {"q_lora"})), "(d)");
  CHECK(d.find("No variant with scaled RoPE is in this run (`advanced_rope` and "
               "`advanced_rope_yarn` missing)") != std::string::npos);
}

TEST_CASE("report paragraph (e): attention bias groups") {
  TempDir tmp;
  json results = synthetic_results(tmp, synthetic_variants());
  std::string e = section(report_of(tmp.path(), results), "(e)");
  CHECK(e.find("with attention bias: `q_lora` 1.9300 (mean 1.9300); without: `baseline_mha` "
               "2.1000, `deepseek_v3_small` 2.0700 (mean 2.0850).") != std::string::npos);
  CHECK(e.find("The variants with bias are 0.1550 lower on average.") != std::string::npos);
  CHECK(e.find("not the effect of the bias alone") != std::string::npos);
  e = section(report_of(tmp.path(), only(results, {"baseline_mha", "deepseek_v3_small"})), "(e)");
  CHECK(e.find("Every variant in this run lacks attention bias") != std::string::npos);
}

TEST_CASE("report paragraph (f): expert load from the last MoE line of metrics.jsonl") {
  TempDir tmp;
  std::vector<VariantSpec> specs = synthetic_variants();
  std::string f = section(report_of(tmp.path(), synthetic_results(tmp, specs)), "(f)");
  // Last complete MoE line (step 3): baseline layers (1.5, 1.7) -> 1.60, CVs (0.3, 0.5) -> 0.40.
  CHECK(f.find("`baseline_mha` (Switch loss, α 0.0100) max/mean 1.60, CV 0.40 at step 3") !=
        std::string::npos);
  CHECK(f.find("`deepseek_v3_small` (aux-loss-free bias balancing, γ 0.0010 + sequence-wise "
               "loss, α 0.0001) max/mean 1.10, CV 0.05 at step 3") != std::string::npos);
  // Switch group: (1.60 + 1.40) / 2 = 1.50, (0.40 + 0.20) / 2 = 0.30.
  CHECK(f.find("Bias balancing (`deepseek_v3_small`) averages max/mean 1.10 and CV 0.05; the "
               "Switch loss (`baseline_mha` and `q_lora`) 1.50 and 0.30: the bias-balanced load "
               "is more even on both measures.") != std::string::npos);
  specs[2].last_moe = {{2.0, 0.1}};
  f = section(report_of(tmp.path(), synthetic_results(tmp, specs)), "(f)");
  CHECK(f.find("more even by CV and less even by max/mean") != std::string::npos);

  // A run whose log has no MoE line is named.
  json results = synthetic_results(tmp, specs);
  tmp.write("q_lora/seed1/metrics.jsonl", metric_line(1, 3.0, {}));
  f = section(report_of(tmp.path(), results), "(f)");
  CHECK(f.find("No MoE data in the metrics.jsonl of " + (tmp.path() / "q_lora/seed1").string()) !=
        std::string::npos);
}

TEST_CASE("report paragraphs name the variants a --only run left out") {
  TempDir tmp;
  const std::string md =
      report_of(tmp.path(), only(synthetic_results(tmp, synthetic_variants()), {"q_lora"}));
  CHECK(section(md, "(a)").find("Needs a standard multi-head attention baseline "
                                "(`baseline_mha`), which is not in this run, so the low-rank "
                                "variants (`q_lora`) have no reference.") != std::string::npos);
  CHECK(section(md, "(b)").find("no impl=flash variant is in this run") != std::string::npos);
  CHECK(section(md, "(b)").find("Present: `q_lora` 550 tokens/s, 300.0 MiB.") != std::string::npos);
  CHECK(section(md, "(f)").find("(`deepseek_v3_small` is not in this run)") != std::string::npos);
  // No paragraph reports a number of an absent variant.
  CHECK(md.find("baseline_mha |") == std::string::npos);
  CHECK(md.find("1050") == std::string::npos);
}

TEST_CASE("report paragraphs link the plots that exist") {
  TempDir tmp;
  const json results = synthetic_results(tmp, synthetic_variants());
  std::string md = report_of(tmp.path(), results);
  CHECK(md.find("Plots:") == std::string::npos);
  tmp.write("ppl_vs_length.png", "png");
  md = report_of(tmp.path(), results);
  CHECK(section(md, "(d)").find("Plots: [ppl_vs_length.png](ppl_vs_length.png).") !=
        std::string::npos);
  CHECK(section(md, "(a)").find("ppl_vs_length.png") == std::string::npos);
}

TEST_CASE("write_report: malformed results are errors naming the run") {
  TempDir tmp;
  CHECK_THROWS_WITH_AS(latte::write_report(tmp.path().string(), json{{"suite", "x"}}),
                       doctest::Contains("write_report: the results object has no \"runs\""),
                       latte::Error);
  json results = synthetic_results(tmp, synthetic_variants());
  results["runs"][1].erase("variant");
  CHECK_THROWS_WITH_AS(latte::write_report(tmp.path().string(), results),
                       doctest::Contains("runs[1] has no string \"variant\""), latte::Error);
  results = synthetic_results(tmp, synthetic_variants());
  results["runs"][0]["seed"] = "one";
  CHECK_THROWS_WITH_AS(latte::write_report(tmp.path().string(), results),
                       doctest::Contains("runs[0] has no integer \"seed\""), latte::Error);
  CHECK_FALSE(fs::exists(tmp.path() / "report.md"));
}

TEST_CASE("plot_report: a missing or failing plot script leaves a note and the report intact") {
  TempDir tmp;
  latte::write_report(tmp.path().string(), synthetic_results(tmp, synthetic_variants()));
  const std::string before = read_file(tmp.path() / "report.md");
  {
    ScopedEnv env("LATTE_TOOLS_DIR", (tmp.path() / "no_tools").string());
    CaptureCout out;
    latte::plot_report(tmp.path().string());
    CHECK(out.text().find("plot_results.py not found") != std::string::npos);
  }
  if (!python_with_matplotlib()) {
    MESSAGE("skipping the failing-script case: /usr/bin/python3 with matplotlib not found");
    return;
  }
  tmp.write("tools/plot_results.py", "import sys\nsys.exit(3)\n");
  ScopedEnv env("LATTE_TOOLS_DIR", (tmp.path() / "tools").string());
  CaptureCout out;
  latte::plot_report(tmp.path().string());
  CHECK(out.text().find("failed (exit status 3)") != std::string::npos);
  CHECK(read_file(tmp.path() / "report.md") == before);
}

TEST_CASE("plot_report: tools/plot_results.py writes the six PNGs and the report links them") {
  if (!python_with_matplotlib()) {
    MESSAGE("skipping: /usr/bin/python3 with matplotlib not found (Debian: python3-matplotlib)");
    return;
  }
  TempDir tmp;
  latte::write_report(tmp.path().string(), synthetic_results(tmp, synthetic_variants()));
  ScopedEnv env("LATTE_TOOLS_DIR", std::string(LATTE_SOURCE_DIR) + "/tools");
  latte::plot_report(tmp.path().string());
  for (const char* png : {"loss_curves.png", "val_loss.png", "tokens_per_second.png",
                          "peak_memory.png", "ppl_vs_length.png", "expert_load.png"}) {
    CAPTURE(png);
    REQUIRE(fs::exists(tmp.path() / png));
    CHECK(fs::file_size(tmp.path() / png) > 1000);  // a rendered 880×550 figure, not a stub
  }
  const std::string md = read_file(tmp.path() / "report.md");
  CHECK(section(md, "(f)").find("[expert_load.png](expert_load.png)") != std::string::npos);
  CHECK(section(md, "(b)").find("[tokens_per_second.png](tokens_per_second.png)") !=
        std::string::npos);
}
