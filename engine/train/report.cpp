// The suite report (see report.h). Conventions of report.md:
// - one table row per variant, in the order of the runs; a value measured per seed is shown as
//   mean ± sample standard deviation (n − 1 in the denominator) over the variant's seeds, or as
//   the bare value when there is one seed; values a run lacks (no 4× evaluation, a loss that
//   was never measured and came out of JSON as null) read "n/a" and are left out of the mean;
// - the paragraphs compare per-variant means, pick the variants they compare by their model
//   configuration (attention type, impl, attention_bias, RoPE type, router) or, for the mixed
//   head dims question, by the seed's variant names, and say which variants are missing instead
//   of comparing nothing;
// - a paragraph links the PNGs of tools/plot_results.py that exist in the folder when it is
//   written; plot_report therefore writes report.md again after the plots are made.
#include "engine/train/report.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/io/atomic_file.h"

namespace latte {

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Reading the results object

// The finite number at `pointer`, if there is one (null, a string or a missing key give none).
std::optional<double> number_at(const Json& j, const std::string& pointer) {
  const Json::json_pointer p(pointer);
  if (!j.contains(p)) return std::nullopt;
  const Json& v = j.at(p);
  if (!v.is_number()) return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::string text_at(const Json& j, const std::string& pointer, const std::string& fallback) {
  const Json::json_pointer p(pointer);
  return j.contains(p) && j.at(p).is_string() ? j.at(p).get<std::string>() : fallback;
}

bool flag_at(const Json& j, const std::string& pointer) {
  const Json::json_pointer p(pointer);
  return j.contains(p) && j.at(p).is_boolean() && j.at(p).get<bool>();
}

// The values of one measurement over a variant's seeds.
struct Stat {
  std::vector<double> values;

  void add(std::optional<double> v) {
    if (v) values.push_back(*v);
  }
  bool empty() const { return values.empty(); }
  size_t count() const { return values.size(); }
  double mean() const {
    double s = 0;
    for (double v : values) s += v;
    return s / static_cast<double>(values.size());
  }
  // Sample standard deviation (n − 1); 0 for a single value.
  double sample_std() const {
    if (values.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : values) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(values.size() - 1));
  }
  std::optional<double> maybe_mean() const {
    return empty() ? std::nullopt : std::optional<double>(mean());
  }
};

// Expert-load balance of one run: the last metrics.jsonl line that carries MoE data.
struct LoadBalance {
  int64_t step = 0;
  double max_over_mean = 0;  // mean over the MoE layers
  double cv = 0;             // mean over the MoE layers
};

std::optional<LoadBalance> last_load_balance(const fs::path& metrics) {
  std::ifstream in(metrics);
  if (!in.good()) return std::nullopt;
  std::optional<LoadBalance> last;
  std::string line;
  while (std::getline(in, line)) {
    // A line cut short by a crash is skipped rather than failing the whole report.
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("moe") || !j["moe"].is_array()) continue;
    Stat max_over_mean, cv;
    for (const Json& layer : j["moe"]) {
      max_over_mean.add(number_at(layer, "/max_over_mean"));
      cv.add(number_at(layer, "/cv"));
    }
    if (max_over_mean.empty() || cv.empty()) continue;
    last = LoadBalance{static_cast<int64_t>(number_at(j, "/step").value_or(0)),
                       max_over_mean.mean(), cv.mean()};
  }
  return last;
}

// Everything the report says about one variant, gathered over its seeds.
struct Variant {
  std::string name;
  Json model, stats, train;  // of its first run (they do not depend on the seed)
  std::vector<int64_t> seeds;
  Stat final_train_loss, best_val_loss, best_val_ppl, ppl_1x, ppl_2x, ppl_4x, tokens_per_second,
      peak_mib, wall_seconds;
  Stat load_max_over_mean, load_cv;  // over the seeds that logged MoE data
  int64_t load_step = 0;
  std::vector<std::string> runs_without_load;  // run folders whose metrics carry no MoE data

  std::optional<double> stat(const std::string& key) const { return number_at(stats, "/" + key); }
  std::string attention_type() const { return text_at(model, "/attention/type", "?"); }
  std::string impl() const { return text_at(model, "/attention/impl", "?"); }
  bool bias() const { return flag_at(model, "/attention/attention_bias"); }
  std::string rope_type() const { return text_at(model, "/rope/type", "default"); }
  bool has_moe() const { return model.contains("moe") && model["moe"].is_object(); }
  double moe_number(const std::string& key) const {
    return number_at(model, "/moe/" + key).value_or(0);
  }
  int64_t model_int(const std::string& pointer) const {
    return static_cast<int64_t>(number_at(model, pointer).value_or(0));
  }
};

const Json& member(const Json& run, size_t index, const char* key, bool (Json::*is_type)() const,
                   const char* type_name) {
  LATTE_CHECK(run.is_object() && run.contains(key) && (run[key].*is_type)())
      << "write_report: runs[" << index << "] has no " << type_name << " \"" << key << "\"";
  return run[key];
}

std::vector<Variant> gather_variants(const Json& results) {
  LATTE_CHECK(results.is_object() && results.contains("runs") && results["runs"].is_array())
      << "write_report: the results object has no \"runs\" array";
  std::vector<Variant> variants;
  const Json& runs = results["runs"];
  for (size_t i = 0; i < runs.size(); ++i) {
    const Json& run = runs[i];
    const std::string name =
        member(run, i, "variant", &Json::is_string, "string").get<std::string>();
    const int64_t seed = member(run, i, "seed", &Json::is_number_integer, "integer").get<int64_t>();
    const std::string run_dir =
        member(run, i, "run_dir", &Json::is_string, "string").get<std::string>();
    auto it = std::find_if(variants.begin(), variants.end(),
                           [&](const Variant& v) { return v.name == name; });
    if (it == variants.end()) {
      Variant v;
      v.name = name;
      v.model = run.value("model", Json::object());
      v.stats = run.value("stats", Json::object());
      v.train = run.value("train", Json::object());
      variants.push_back(std::move(v));
      it = variants.end() - 1;
    }
    Variant& v = *it;
    v.seeds.push_back(seed);
    const Json summary = run.value("summary", Json::object());
    v.final_train_loss.add(number_at(summary, "/final_train_loss"));
    v.best_val_loss.add(number_at(summary, "/best_val_loss"));
    v.best_val_ppl.add(number_at(summary, "/best_val_ppl"));
    v.ppl_1x.add(number_at(summary, "/length_extrapolation/1/val_ppl"));
    v.ppl_2x.add(number_at(summary, "/length_extrapolation/2/val_ppl"));
    v.ppl_4x.add(number_at(summary, "/length_extrapolation/4/val_ppl"));
    v.tokens_per_second.add(number_at(summary, "/tokens_per_second"));
    const auto peak = number_at(summary, "/peak_bytes");
    v.peak_mib.add(peak ? std::optional<double>(*peak / (1024.0 * 1024.0)) : std::nullopt);
    v.wall_seconds.add(number_at(summary, "/wall_seconds"));
    if (v.has_moe()) {
      if (const auto lb = last_load_balance(fs::path(run_dir) / "metrics.jsonl")) {
        v.load_max_over_mean.add(lb->max_over_mean);
        v.load_cv.add(lb->cv);
        v.load_step = std::max(v.load_step, lb->step);
      } else {
        v.runs_without_load.push_back(run_dir);
      }
    }
  }
  return variants;
}

// ---------------------------------------------------------------------------------------------
// Formatting

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string signed_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.*f", decimals, v);
  return buf;
}

// 1234 -> "1.2k", 12345678 -> "12.35M", 3.2e9 -> "3.20G".
std::string count(double v) {
  const double a = std::fabs(v);
  if (a >= 1e9) return fixed(v / 1e9, 2) + "G";
  if (a >= 1e6) return fixed(v / 1e6, 2) + "M";
  if (a >= 1e3) return fixed(v / 1e3, 1) + "k";
  return fixed(v, 0);
}

std::string count(std::optional<double> v) {
  return v ? count(*v) : "n/a";
}

// 102400 -> "102,400".
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::string ratio(double a, double b) {
  return b != 0 ? fixed(a / b, 2) + "×" : "n/a";
}

std::string ratio(std::optional<double> a, std::optional<double> b) {
  return a && b ? ratio(*a, *b) : "n/a";
}

std::string value(const Stat& s, int decimals) {
  return s.empty() ? "n/a" : fixed(s.mean(), decimals);
}

std::string code(const std::string& name) {
  return "`" + name + "`";
}

// "`a`", "`a` and `b`", "`a`, `b` and `c`".
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += code(names[i]);
  }
  return out;
}

using VariantList = std::vector<const Variant*>;

std::vector<std::string> names_of(const VariantList& vs) {
  std::vector<std::string> names;
  for (const Variant* v : vs) names.push_back(v->name);
  return names;
}

VariantList where(const std::vector<Variant>& vs, const std::function<bool(const Variant&)>& pred) {
  VariantList out;
  for (const Variant& v : vs)
    if (pred(v)) out.push_back(&v);
  return out;
}

const Variant* find(const std::vector<Variant>& vs, const std::string& name) {
  for (const Variant& v : vs)
    if (v.name == name) return &v;
  return nullptr;
}

std::vector<std::string> missing(const std::vector<Variant>& vs,
                                 const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names)
    if (!find(vs, n)) out.push_back(n);
  return out;
}

// The mean over variants of a per-variant mean (variants lacking the value are left out).
std::optional<double> group_mean(const VariantList& vs, Stat Variant::*field) {
  Stat s;
  for (const Variant* v : vs) s.add((v->*field).maybe_mean());
  return s.maybe_mean();
}

// Whether a difference of two variants' mean losses is larger than their seed-to-seed spread.
std::string spread_note(double delta, const Stat& a, const Stat& b) {
  if (a.count() < 2 || b.count() < 2) return "";
  const double spread = std::max(a.sample_std(), b.sample_std());
  return std::string(std::fabs(delta) < spread ? ", within" : ", beyond") +
         " the seed-to-seed std of " + fixed(spread, 4);
}

// The PNG links of a paragraph: those of `files` that exist in `dir`.
std::string plot_links(const fs::path& dir, const std::vector<std::string>& files) {
  std::string links;
  for (const auto& f : files)
    if (fs::exists(dir / f)) links += (links.empty() ? "" : ", ") + ("[" + f + "](" + f + ")");
  return links.empty() ? "" : " Plots: " + links + ".";
}

// ---------------------------------------------------------------------------------------------
// The table

std::string cell(const Stat& s, int decimals, bool show_std) {
  if (s.empty()) return "n/a";
  std::string out = fixed(s.mean(), decimals);
  if (show_std && s.count() > 1) out += " ± " + fixed(s.sample_std(), decimals);
  return out;
}

std::string table(const std::vector<Variant>& vs, bool show_std) {
  std::ostringstream o;
  o << "| variant | params total | params active | attention params/layer | FLOPs/token | "
       "KV cache bytes/token | final train loss | best val loss | best val ppl | ppl @2× | "
       "ppl @4× | tokens/s | peak MiB | wall s |\n";
  o << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Variant& v : vs) {
    const auto kv = v.stat("kv_cache_bytes_per_token");
    o << "| " << v.name << " | " << count(v.stat("params_total")) << " | "
      << count(v.stat("params_active")) << " | " << count(v.stat("attention_params_per_layer"))
      << " | " << count(v.stat("flops_per_token")) << " | " << (kv ? fixed(*kv, 0) : "n/a") << " | "
      << cell(v.final_train_loss, 4, show_std) << " | " << cell(v.best_val_loss, 4, show_std)
      << " | " << cell(v.best_val_ppl, 2, show_std) << " | " << cell(v.ppl_2x, 2, show_std) << " | "
      << cell(v.ppl_4x, 2, show_std) << " | " << cell(v.tokens_per_second, 0, show_std) << " | "
      << cell(v.peak_mib, 1, show_std) << " | " << cell(v.wall_seconds, 1, show_std) << " |\n";
  }
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// The paragraphs, one per question of the experiment

std::string ranks(const Variant& v) {
  const int64_t q = v.model_int("/attention/q_lora_rank");
  return (q > 0 ? "q_lora_rank " + std::to_string(q) : std::string("no query compression")) +
         ", kv_lora_rank " + std::to_string(v.model_int("/attention/kv_lora_rank"));
}

std::string lora_paragraph(const std::vector<Variant>& vs) {
  const VariantList mha = where(vs, [](const Variant& v) { return v.attention_type() == "mha"; });
  const VariantList low = where(vs, [](const Variant& v) { return v.attention_type() == "mla"; });
  std::ostringstream o;
  if (mha.empty()) {
    o << "Needs a standard multi-head attention baseline (`baseline_mha`), which is not in this "
         "run, so the low-rank variants"
      << (low.empty() ? "" : " (" + name_list(names_of(low)) + ")") << " have no reference.";
    return o.str();
  }
  if (low.empty()) {
    o << "No low-rank (MLA) variant is in this run, only " << name_list(names_of(mha))
      << "; there is nothing to compare.";
    return o.str();
  }
  const Variant& base = *mha.front();
  const auto base_attn = base.stat("attention_params_per_layer");
  const auto base_kv = base.stat("kv_cache_bytes_per_token");
  o << "Against " << code(base.name) << " (" << count(base_attn)
    << " attention parameters per layer, " << (base_kv ? fixed(*base_kv, 0) : "n/a")
    << " KV-cache bytes per token, best val loss " << value(base.best_val_loss, 4) << "): ";
  const Variant* smallest_kv = nullptr;
  const Variant* lowest_loss = nullptr;
  for (size_t i = 0; i < low.size(); ++i) {
    const Variant& v = *low[i];
    o << (i > 0 ? "; " : "") << code(v.name) << " (" << ranks(v) << ") has "
      << ratio(v.stat("attention_params_per_layer"), base_attn) << " the attention parameters and "
      << ratio(v.stat("kv_cache_bytes_per_token"), base_kv) << " the KV cache";
    const int64_t hidden = v.model_int("/hidden_size");
    if (hidden != base.model_int("/hidden_size"))
      o << " (hidden size " << hidden << " vs " << base.model_int("/hidden_size")
        << ": not like-for-like)";
    if (!v.best_val_loss.empty() && !base.best_val_loss.empty()) {
      const double delta = v.best_val_loss.mean() - base.best_val_loss.mean();
      o << ", best val loss " << value(v.best_val_loss, 4) << " (" << signed_fixed(delta, 4)
        << spread_note(delta, v.best_val_loss, base.best_val_loss) << ")";
      if (!lowest_loss || v.best_val_loss.mean() < lowest_loss->best_val_loss.mean())
        lowest_loss = &v;
    } else {
      o << ", best val loss n/a";
    }
    const auto kv = v.stat("kv_cache_bytes_per_token");
    if (kv && (!smallest_kv || *kv < *smallest_kv->stat("kv_cache_bytes_per_token")))
      smallest_kv = &v;
  }
  o << ".";
  if (smallest_kv)
    o << " The smallest KV cache is " << code(smallest_kv->name) << "'s ("
      << ratio(smallest_kv->stat("kv_cache_bytes_per_token"), base_kv) << " the baseline's)";
  if (lowest_loss)
    o << (smallest_kv ? "; the" : " The") << " lowest best val loss among the low-rank variants is "
      << code(lowest_loss->name) << "'s ("
      << signed_fixed(lowest_loss->best_val_loss.mean() - base.best_val_loss.mean(), 4)
      << " vs the baseline)";
  if (smallest_kv || lowest_loss) o << ".";
  return o.str();
}

std::string impl_group(const VariantList& vs) {
  std::string out;
  for (const Variant* v : vs)
    out += (out.empty() ? "" : "; ") + code(v->name) + " " + value(v->tokens_per_second, 0) +
           " tokens/s, " + value(v->peak_mib, 1) + " MiB";
  return out;
}

std::string flash_paragraph(const std::vector<Variant>& vs) {
  const VariantList flash = where(vs, [](const Variant& v) { return v.impl() == "flash"; });
  const VariantList naive = where(vs, [](const Variant& v) { return v.impl() == "naive"; });
  std::ostringstream o;
  if (flash.empty() || naive.empty()) {
    const char* absent = flash.empty() && naive.empty() ? "impl=flash or impl=naive"
                         : flash.empty()                ? "impl=flash"
                                                        : "impl=naive";
    o << "Needs variants of both attention implementations; no " << absent
      << " variant is in this run (in the seed, `flash_attention` and `hybrid_lora` use flash; "
         "`q_lora`, `mixed_heads` and `advanced_rope` use naive).";
    if (!flash.empty() || !naive.empty())
      o << " Present: " << impl_group(flash.empty() ? naive : flash) << ".";
    return o.str();
  }
  o << "impl=flash: " << impl_group(flash) << ". impl=naive: " << impl_group(naive) << ".";
  const auto f_tps = group_mean(flash, &Variant::tokens_per_second);
  const auto n_tps = group_mean(naive, &Variant::tokens_per_second);
  const auto f_mem = group_mean(flash, &Variant::peak_mib);
  const auto n_mem = group_mean(naive, &Variant::peak_mib);
  if (f_tps && n_tps)
    o << " Averaged over the variants, flash runs at " << ratio(*f_tps, *n_tps)
      << " the tokens/s of naive (" << fixed(*f_tps, 0) << " vs " << fixed(*n_tps, 0) << ")";
  if (f_mem && n_mem)
    o << (f_tps && n_tps ? " with " : " Averaged over the variants, flash uses ")
      << ratio(*f_mem, *n_mem) << " the peak memory (" << fixed(*f_mem, 1) << " vs "
      << fixed(*n_mem, 1) << " MiB)";
  if ((f_tps && n_tps) || (f_mem && n_mem)) o << ".";
  o << " These variants also differ in ranks, head dims, bias, RoPE and learning rate, so the "
       "ratios are not the kernel's alone; `latte bench attention` compares flash and naive on "
       "identical shapes.";
  return o.str();
}

std::string head_dims(const Variant& v) {
  return std::to_string(v.model_int("/attention/qk_nope_head_dim")) + "/" +
         std::to_string(v.model_int("/attention/qk_rope_head_dim")) + "/" +
         std::to_string(v.model_int("/attention/v_head_dim"));
}

std::string mixed_heads_paragraph(const std::vector<Variant>& vs) {
  const std::vector<std::string> needed = {"q_lora", "mixed_heads", "hybrid_lora"};
  const std::vector<std::string> absent = missing(vs, needed);
  const Variant* ref = find(vs, "q_lora");
  VariantList targets;
  for (const char* n : {"mixed_heads", "hybrid_lora"})
    if (const Variant* v = find(vs, n)) targets.push_back(v);
  std::ostringstream o;
  if (!ref || targets.empty()) {
    o << "Compares `mixed_heads` and `hybrid_lora` against `q_lora`; " << name_list(absent)
      << (absent.size() == 1 ? " is" : " are") << " not in this run, so there is nothing to "
      << "compare.";
    return o.str();
  }
  o << "Head dims are qk_nope/qk_rope/v (" << code(ref->name) << ": " << head_dims(*ref) << "). ";
  for (size_t i = 0; i < targets.size(); ++i) {
    const Variant& v = *targets[i];
    o << (i > 0 ? " " : "") << code(v.name) << " (" << head_dims(v) << ") has "
      << ratio(v.stat("attention_params_per_layer"), ref->stat("attention_params_per_layer"))
      << " the attention parameters per layer of " << code(ref->name) << ", "
      << ratio(v.stat("flops_per_token"), ref->stat("flops_per_token")) << " its FLOPs/token, "
      << ratio(v.stat("kv_cache_bytes_per_token"), ref->stat("kv_cache_bytes_per_token"))
      << " its KV cache and "
      << ratio(v.tokens_per_second.maybe_mean(), ref->tokens_per_second.maybe_mean())
      << " its tokens/s";
    if (!v.best_val_loss.empty() && !ref->best_val_loss.empty()) {
      const double delta = v.best_val_loss.mean() - ref->best_val_loss.mean();
      o << "; best val loss " << value(v.best_val_loss, 4) << " vs " << value(ref->best_val_loss, 4)
        << " (" << signed_fixed(delta, 4) << spread_note(delta, v.best_val_loss, ref->best_val_loss)
        << ")";
    }
    o << ".";
  }
  if (!absent.empty())
    o << " " << name_list(absent) << (absent.size() == 1 ? " is" : " are") << " not in this run.";
  return o.str();
}

std::string rope_description(const Variant& v) {
  std::string out = v.rope_type();
  if (const auto f = number_at(v.model, "/rope/factor")) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " ×%g", *f);  // 2 -> "×2", 1.5 -> "×1.5"
    out += buf;
  }
  if (const auto t = number_at(v.model, "/rope/theta")) out += ", theta " + fixed(*t, 0);
  return out;
}

// Perplexity growth from 1× to `multiplier` (2 or 4) × the training length; none for another
// multiplier or a missing perplexity.
std::optional<double> growth(const Variant& v, int multiplier) {
  if (multiplier != 2 && multiplier != 4) return std::nullopt;
  const Stat& far = multiplier == 4 ? v.ppl_4x : v.ppl_2x;
  if (v.ppl_1x.empty() || far.empty()) return std::nullopt;
  return far.mean() / v.ppl_1x.mean();
}

// The longest length (4×, else 2×) at which both groups have a perplexity growth; 0 for none.
int growth_multiplier(const VariantList& a, const VariantList& b) {
  const auto any_growth = [](const VariantList& vs, int m) {
    return std::any_of(vs.begin(), vs.end(),
                       [m](const Variant* v) { return growth(*v, m).has_value(); });
  };
  for (int m : {4, 2})
    if (any_growth(a, m) && any_growth(b, m)) return m;
  return 0;
}

std::string rope_paragraph(const std::vector<Variant>& vs) {
  const VariantList scaled = where(vs, [](const Variant& v) { return v.rope_type() != "default"; });
  const VariantList plain = where(vs, [](const Variant& v) { return v.rope_type() == "default"; });
  const std::vector<std::string> absent = missing(vs, {"advanced_rope", "advanced_rope_yarn"});
  std::ostringstream o;
  if (scaled.empty()) {
    o << "No variant with scaled RoPE is in this run"
      << (absent.empty() ? "" : " (" + name_list(absent) + " missing)")
      << ", so there is nothing to compare.";
    return o.str();
  }
  if (plain.empty()) {
    o << "No default-RoPE variant is in this run to compare " << name_list(names_of(scaled))
      << " against.";
    return o.str();
  }
  const int m = growth_multiplier(scaled, plain);
  const std::string ratio_name = std::to_string(m) + "×/1×";
  Stat plain_growth;
  for (const Variant* v : plain) plain_growth.add(growth(*v, m));
  const auto p2 = group_mean(plain, &Variant::ppl_2x);
  const auto p4 = group_mean(plain, &Variant::ppl_4x);
  o << "Perplexity at 1×, 2× and 4× the training length: ";
  for (size_t i = 0; i < scaled.size(); ++i) {
    const Variant& v = *scaled[i];
    o << (i > 0 ? "; " : "") << code(v.name) << " (" << rope_description(v) << ") "
      << value(v.ppl_1x, 2) << ", " << value(v.ppl_2x, 2) << ", " << value(v.ppl_4x, 2);
    if (const auto g = growth(v, m)) o << " (" << ratio_name << ": " << fixed(*g, 2) << ")";
  }
  o << ". The default-RoPE variants (" << name_list(names_of(plain)) << ") average "
    << (p2 ? fixed(*p2, 2) : "n/a") << " at 2× and " << (p4 ? fixed(*p4, 2) : "n/a") << " at 4×";
  if (m > 0) o << " (mean " << ratio_name << ": " << value(plain_growth, 2) << ")";
  o << ".";
  if (m == 0)
    o << " Without perplexities at 1× and at 2× or 4× (eval.length_multipliers) for both groups, "
         "the growth with length cannot be compared.";
  for (const Variant* v : scaled) {
    const auto g = growth(*v, m);
    if (!g || plain_growth.empty()) continue;
    const std::string mine = fixed(*g, 2), theirs = fixed(plain_growth.mean(), 2);
    o << " " << code(v->name) << "'s " << ratio_name << " ratio, " << mine << ", "
      << (mine == theirs             ? "equals"
          : *g < plain_growth.mean() ? "is lower than"
                                     : "is higher than")
      << " the default-RoPE mean (" << theirs << ").";
  }
  if (m > 0) o << " A lower ratio means perplexity degrades less past the trained length.";
  if (!absent.empty())
    o << " " << name_list(absent) << (absent.size() == 1 ? " is" : " are") << " not in this run.";
  return o.str();
}

std::string loss_list(const VariantList& vs) {
  std::string out;
  for (const Variant* v : vs)
    out += (out.empty() ? "" : ", ") + code(v->name) + " " + value(v->best_val_loss, 4);
  return out;
}

std::string bias_paragraph(const std::vector<Variant>& vs) {
  const VariantList with = where(vs, [](const Variant& v) { return v.bias(); });
  const VariantList without = where(vs, [](const Variant& v) { return !v.bias(); });
  std::ostringstream o;
  if (with.empty() || without.empty()) {
    o << "Every variant in this run " << (with.empty() ? "lacks" : "has")
      << " attention bias, so there is nothing to compare (in the seed, `q_lora`, `mixed_heads` "
         "and `hybrid_lora` use bias; `flash_attention` and `advanced_rope` do not).";
    return o.str();
  }
  const auto w = group_mean(with, &Variant::best_val_loss);
  const auto wo = group_mean(without, &Variant::best_val_loss);
  o << "Best val loss with attention bias: " << loss_list(with) << " (mean "
    << (w ? fixed(*w, 4) : "n/a") << "); without: " << loss_list(without) << " (mean "
    << (wo ? fixed(*wo, 4) : "n/a") << ").";
  if (w && wo)
    o << " The variants with bias are " << fixed(std::fabs(*w - *wo), 4) << " "
      << (*w < *wo ? "lower" : "higher") << " on average.";
  o << " The two groups also differ in ranks, head dims, impl, RoPE and learning rate, so this is "
       "not the effect of the bias alone.";
  return o.str();
}

std::string balancing(const Variant& v) {
  std::vector<std::string> parts;
  if (v.moe_number("bias_update_speed") > 0)
    parts.push_back("aux-loss-free bias balancing, γ " +
                    fixed(v.moe_number("bias_update_speed"), 4));
  if (v.moe_number("aux_loss_alpha") > 0)
    parts.push_back("Switch loss, α " + fixed(v.moe_number("aux_loss_alpha"), 4));
  if (v.moe_number("seq_aux_loss_alpha") > 0)
    parts.push_back("sequence-wise loss, α " + fixed(v.moe_number("seq_aux_loss_alpha"), 4));
  if (parts.empty()) return "no balancing";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " + ") + p;
  return out;
}

std::string moe_paragraph(const std::vector<Variant>& vs) {
  const VariantList moe = where(vs, [](const Variant& v) { return v.has_moe(); });
  const VariantList dense = where(vs, [](const Variant& v) { return !v.has_moe(); });
  std::ostringstream o;
  if (moe.empty()) {
    o << "No variant in this run has MoE layers, so there is no expert load to compare.";
    return o.str();
  }
  o << "Expert load at the last logged step (max/mean tokens per expert and coefficient of "
       "variation, averaged over MoE layers and seeds; 1 and 0 are perfectly even): ";
  for (size_t i = 0; i < moe.size(); ++i) {
    const Variant& v = *moe[i];
    o << (i > 0 ? "; " : "") << code(v.name) << " (" << balancing(v) << ") ";
    if (v.load_max_over_mean.empty())
      o << "has no MoE data in metrics.jsonl";
    else
      o << "max/mean " << value(v.load_max_over_mean, 2) << ", CV " << value(v.load_cv, 2)
        << " at step " << v.load_step;
  }
  o << ".";
  const VariantList bias = where(vs, [](const Variant& v) {
    return v.has_moe() && v.moe_number("bias_update_speed") > 0 && !v.load_max_over_mean.empty();
  });
  const VariantList sw = where(vs, [](const Variant& v) {
    return v.has_moe() && v.moe_number("bias_update_speed") <= 0 &&
           v.moe_number("aux_loss_alpha") > 0 && !v.load_max_over_mean.empty();
  });
  if (bias.empty()) {
    o << " No variant with aux-loss-free bias balancing has load data"
      << (find(vs, "deepseek_v3_small") ? "" : " (`deepseek_v3_small` is not in this run)")
      << ", so it cannot be compared with the Switch loss.";
  } else if (sw.empty()) {
    o << " No variant balanced by the Switch loss alone has load data, so bias balancing ("
      << name_list(names_of(bias)) << ") has no comparison.";
  } else {
    const double b_max = *group_mean(bias, &Variant::load_max_over_mean);
    const double b_cv = *group_mean(bias, &Variant::load_cv);
    const double s_max = *group_mean(sw, &Variant::load_max_over_mean);
    const double s_cv = *group_mean(sw, &Variant::load_cv);
    o << " Bias balancing (" << name_list(names_of(bias)) << ") averages max/mean "
      << fixed(b_max, 2) << " and CV " << fixed(b_cv, 2) << "; the Switch loss ("
      << name_list(names_of(sw)) << ") " << fixed(s_max, 2) << " and " << fixed(s_cv, 2) << ": ";
    if ((b_max < s_max) == (b_cv < s_cv))
      o << "the bias-balanced load is " << (b_max < s_max ? "more" : "less")
        << " even on both measures.";
    else
      o << "the bias-balanced load is more even by " << (b_max < s_max ? "max/mean" : "CV")
        << " and less even by " << (b_max < s_max ? "CV" : "max/mean") << ".";
  }
  for (const Variant* v : moe)
    if (!v->runs_without_load.empty()) {
      o << " No MoE data in the metrics.jsonl of";
      for (const auto& d : v->runs_without_load) o << " " << d;
      o << ".";
    }
  if (!dense.empty()) o << " Dense (no MoE): " << name_list(names_of(dense)) << ".";
  o << " Each value is one optimizer step's load.";
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// The files

std::string budget_line(const Json& results, const std::vector<Variant>& vs) {
  std::ostringstream o;
  const std::string scale = results.value("scale", std::string("?"));
  const std::string description = results.value("scale_description", std::string());
  o << "Scale `" << scale << "`" << (description.empty() ? "" : ": " + description) << ". ";
  std::vector<std::string> budgets;
  for (const Variant& v : vs) {
    const int64_t steps = static_cast<int64_t>(number_at(v.train, "/steps").value_or(0));
    const int64_t batch = static_cast<int64_t>(number_at(v.train, "/batch_size").value_or(0));
    const int64_t seq = static_cast<int64_t>(number_at(v.train, "/seq_len").value_or(0));
    const std::string b = std::to_string(steps) + " steps × batch " + std::to_string(batch) +
                          " × seq_len " + std::to_string(seq) + " = " +
                          grouped(steps * batch * seq) + " tokens";
    if (std::find(budgets.begin(), budgets.end(), b) == budgets.end()) budgets.push_back(b);
  }
  if (budgets.size() == 1)
    o << "Budget per run: " << budgets.front() << ".";
  else if (budgets.size() > 1) {
    o << "Budgets differ by variant:";
    for (const Variant& v : vs)
      o << " " << v.name << " " << number_at(v.train, "/steps").value_or(0) << "×"
        << number_at(v.train, "/batch_size").value_or(0) << "×"
        << number_at(v.train, "/seq_len").value_or(0) << ";";
  }
  return o.str();
}

std::string markdown(const fs::path& dir, const Json& results, const std::vector<Variant>& vs) {
  const int64_t repeats = results.value("repeats", int64_t{1});
  const bool show_std = repeats > 1;
  std::ostringstream o;
  o << "# latte suite `" << results.value("suite", std::string("?")) << "`, scale `"
    << results.value("scale", std::string("?")) << "`\n\n";
  o << budget_line(results, vs) << "\n\n";
  if (show_std)
    o << repeats << " seeds per variant. Measured values are mean ± sample standard deviation "
      << "(n − 1) over the seeds; a single value means one seed finished.\n\n";
  else
    o << "One seed per variant: each value is that run's.\n\n";
  o << table(vs, show_std) << "\n";
  o << "Losses are the language-model loss (nats per token); ppl @2×/@4× are validation "
       "perplexities at 2 and 4 times the training sequence length after training; peak memory "
       "is the allocator's peak; FLOPs and parameters count the main model (no MTP).";
  o << plot_links(dir, {"loss_curves.png", "val_loss.png"}) << "\n\n";
  o << "## Questions\n\n";
  o << "### (a) LoRA efficiency\n\n"
    << lora_paragraph(vs) << plot_links(dir, {"val_loss.png", "loss_curves.png"}) << "\n\n";
  o << "### (b) Flash vs naive attention\n\n"
    << flash_paragraph(vs) << plot_links(dir, {"tokens_per_second.png", "peak_memory.png"})
    << "\n\n";
  o << "### (c) Mixed head dims\n\n"
    << mixed_heads_paragraph(vs) << plot_links(dir, {"loss_curves.png", "val_loss.png"}) << "\n\n";
  o << "### (d) RoPE scaling\n\n"
    << rope_paragraph(vs) << plot_links(dir, {"ppl_vs_length.png"}) << "\n\n";
  o << "### (e) Attention bias\n\n"
    << bias_paragraph(vs) << plot_links(dir, {"val_loss.png"}) << "\n\n";
  o << "### (f) MoE balance\n\n"
    << moe_paragraph(vs) << plot_links(dir, {"expert_load.png"}) << "\n";
  return o.str();
}

// A CSV field, quoted when it holds a comma, quote, line break or edge space.
std::string csv_field(const std::string& s) {
  const bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
                     (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A number of the results as written in the CSV: integers as such, others with 10 significant
// digits, missing or non-finite values empty.
std::string csv_number(const Json& j, const std::string& pointer) {
  const Json::json_pointer p(pointer);
  if (!j.contains(p)) return "";
  const Json& v = j.at(p);
  if (v.is_number_integer()) return v.dump();
  const auto d = number_at(j, pointer);
  if (!d) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", *d);
  return buf;
}

std::string csv(const Json& results) {
  const std::vector<std::pair<std::string, std::string>> columns = {
      {"variant", "/variant"},
      {"seed", "/seed"},
      {"params_total", "/stats/params_total"},
      {"params_active", "/stats/params_active"},
      {"attention_params_per_layer", "/stats/attention_params_per_layer"},
      {"flops_per_token", "/stats/flops_per_token"},
      {"kv_cache_bytes_per_token", "/stats/kv_cache_bytes_per_token"},
      {"final_train_loss", "/summary/final_train_loss"},
      {"best_val_loss", "/summary/best_val_loss"},
      {"best_val_ppl", "/summary/best_val_ppl"},
      {"ppl_2x", "/summary/length_extrapolation/2/val_ppl"},
      {"ppl_4x", "/summary/length_extrapolation/4/val_ppl"},
      {"tokens_per_second", "/summary/tokens_per_second"},
      {"peak_bytes", "/summary/peak_bytes"},
      {"wall_seconds", "/summary/wall_seconds"}};
  std::string out;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (c > 0) out += ',';
    out += columns[c].first;
  }
  out += "\n";
  for (const Json& run : results["runs"]) {
    for (size_t c = 0; c < columns.size(); ++c) {
      const std::string& pointer = columns[c].second;
      const Json::json_pointer p(pointer);
      const std::string field = run.contains(p) && run.at(p).is_string()
                                    ? run.at(p).get<std::string>()
                                    : csv_number(run, pointer);
      if (c > 0) out += ',';
      out += csv_field(field);
    }
    out += "\n";
  }
  return out;
}

void write_markdown(const fs::path& dir, const Json& results) {
  const std::vector<Variant> variants = gather_variants(results);
  write_file_atomically((dir / "report.md").string(), markdown(dir, results, variants));
}

// ---------------------------------------------------------------------------------------------
// Plots

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

fs::path tools_dir() {
  if (const char* env = std::getenv("LATTE_TOOLS_DIR"); env && *env) return env;
#ifdef LATTE_SOURCE_DIR
  const fs::path source_tools = fs::path(LATTE_SOURCE_DIR) / "tools";
  if (fs::exists(source_tools / "plot_results.py")) return source_tools;
#endif
  return "tools";
}

// The exit status of a shell command (-1 when it did not run or was killed by a signal).
int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

void write_report(const std::string& dir, const nlohmann::json& results) {
  const std::vector<Variant> variants = gather_variants(results);  // validates first
  std::error_code ec;
  fs::create_directories(dir, ec);
  LATTE_CHECK(!ec) << "write_report: cannot create " << dir << " (" << ec.message() << ")";
  const fs::path d(dir);
  write_file_atomically((d / "results.json").string(), results.dump(2) + "\n");
  write_file_atomically((d / "results.csv").string(), csv(results));
  write_file_atomically((d / "report.md").string(), markdown(d, results, variants));
}

void plot_report(const std::string& dir) {
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const fs::path script = tools_dir() / "plot_results.py";
  if (!fs::exists(script)) {
    std::cout << "note: no plots: " << script.string()
              << " not found (set LATTE_TOOLS_DIR to the tools folder)\n";
    return;
  }
  if (run_shell(python + " -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    std::cout << "note: no plots: " << python
              << " with matplotlib is not available (Debian: python3-matplotlib)\n";
    return;
  }
  const int status =
      run_shell(python + " " + shell_quote(script.string()) + " " + shell_quote(dir));
  if (status != 0) {
    std::cout << "note: no plots: " << script.string() << " failed (exit status " << status
              << "); the report is complete without them\n";
    return;
  }
  // The paragraphs link the plots that exist, so report.md is written again now that they do.
  std::ifstream in(fs::path(dir) / "results.json");
  const Json results = Json::parse(in, nullptr, false);
  if (results.is_discarded()) {
    std::cout << "note: " << dir << "/results.json is unreadable; report.md links no plots\n";
    return;
  }
  write_markdown(dir, results);
}

}  // namespace latte
