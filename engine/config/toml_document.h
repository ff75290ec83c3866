// ConfigDocument: a TOML configuration resolved through its `inherit` chain and command-line
// `--set key=value` overrides, remembering for every key the file and line it came from.
// TableReader: typed access to one table of it with used-key tracking, so that wrong types,
// out-of-range values and unknown keys are errors naming file:line, the dotted key, what was
// expected and what was found, e.g.
//   configs/x.toml:12: model.attention.q_lora_rank: expected an integer >= 0, got -3
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace latte {

// Where a value came from: a file and its 1-based line, or a source without lines (line 0),
// such as "command line (--set model.moe.n_group=2)".
struct ConfigOrigin {
  std::string source;
  int64_t line = 0;

  // "configs/x.toml:12", or the source alone when it has no line.
  std::string str() const;
};

// Numeric bounds checked by TableReader::get_int / get_double and named in their errors.
struct Bounds {
  std::optional<double> min;
  bool min_exclusive = false;
  std::optional<double> max;

  static Bounds at_least(double lo) { return {lo, false, std::nullopt}; }
  static Bounds greater_than(double lo) { return {lo, true, std::nullopt}; }
  static Bounds in_range(double lo, double hi) { return {lo, false, hi}; }

  bool contains(double value) const;
  // ">= 0", "> 0", "in [1, 8]", or "" when unbounded.
  std::string describe() const;
};

struct ConfigNode;  // one table, array or value of a resolved document (toml_document.cpp)

// Typed reader of one table. Every key asked for is recorded, so that reject_unused() can name
// the keys nobody read. A reader of an absent table exists() == false and returns fallbacks.
// Readers point into their ConfigDocument: do not use them after the document is changed or
// destroyed.
class TableReader {
 public:
  // The dotted path of the table ("model.attention"; "" for the top level).
  const std::string& path() const { return path_; }
  // The dotted path of one of its keys ("model.attention.q_lora_rank").
  std::string key_path(std::string_view key) const;
  bool exists() const { return node_ != nullptr; }
  // Where the table was defined; for an absent table, where its parent was.
  ConfigOrigin origin() const;
  // Where `key` was set; origin() when it is absent.
  ConfigOrigin origin_of(std::string_view key) const;
  bool has(std::string_view key) const;
  bool has_table(std::string_view key) const;
  // Keys present in the table, in document order.
  std::vector<std::string> keys() const;

  int64_t get_int(std::string_view key, int64_t fallback, const Bounds& bounds = {});
  // Integers are accepted; NaN and infinities are not.
  double get_double(std::string_view key, double fallback, const Bounds& bounds = {});
  bool get_bool(std::string_view key, bool fallback);
  std::string get_string(std::string_view key, const std::string& fallback);
  // One of `choices` by name; the error lists the allowed names.
  template <typename E>
  E get_enum(std::string_view key,
             std::initializer_list<std::pair<std::string_view, std::type_identity_t<E>>> choices,
             E fallback);
  std::vector<int64_t> get_int_list(std::string_view key, const std::vector<int64_t>& fallback,
                                    const Bounds& bounds = {});
  std::vector<double> get_double_list(std::string_view key, const std::vector<double>& fallback,
                                      const Bounds& bounds = {});
  std::vector<std::string> get_string_list(std::string_view key,
                                           const std::vector<std::string>& fallback);

  // A sub-table (absent: a reader that does not exist); an error when `key` is not a table.
  TableReader table(std::string_view key);
  // The tables of an array of tables (`[[key]]`); empty when absent.
  std::vector<TableReader> table_array(std::string_view key);

  // Marks `key` as read without reading it (a key deliberately ignored).
  void mark_used(std::string_view key);
  // Fails on the first key (in document order) that no getter asked for, suggesting the
  // closest asked-for name: "x.toml:7: model.attention: unknown key 'q_lora_rnk' (did you mean
  // 'q_lora_rank'?)".
  void reject_unused() const;
  // Fails on the first key not in `allowed`, whether read or not.
  void check_no_unknown_keys(const std::vector<std::string>& allowed) const;

  // Throws latte::Error "origin_of(key): key_path(key): message".
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;

 private:
  friend class ConfigDocument;
  TableReader(const ConfigNode* node, std::string path, ConfigOrigin fallback_origin);

  // The member named `key` or nullptr; records that `key` was asked for.
  const ConfigNode* find(std::string_view key);
  size_t get_choice(std::string_view key, const std::vector<std::string_view>& names,
                    size_t fallback);
  [[noreturn]] void fail_unknown(const ConfigNode& member, const std::string& name,
                                 const std::vector<std::string>& candidates,
                                 size_t more_unknown) const;

  const ConfigNode* node_;
  std::string path_;
  ConfigOrigin fallback_origin_;
  std::set<std::string, std::less<>> asked_;
};

// A resolved TOML configuration.
//
// inherit: a top-level `inherit = "base.toml"` names a parent file, relative to the including
// file. The parent is loaded first (chains are allowed, a cycle is an error naming the chain),
// then the child's keys override the parent's and tables merge recursively. `inherit` itself
// is not part of the resolved document.
//
// Overrides: apply_override("train.lr=3e-4") sets one dotted key, creating missing tables. The
// value is parsed as a TOML value; text that is not one (naive) is taken as a string, except
// text that starts like a string, array or inline table ("naive), which is an error.
class ConfigDocument {
 public:
  // Reads `path` (as written in errors) and its inherit chain.
  static ConfigDocument load(const std::string& path);
  // Parses `text` as if it were the file `name`: errors name `name`, and `inherit` paths are
  // relative to its directory.
  static ConfigDocument parse(std::string_view text, const std::string& name);
  // The document a to_json() produced (values keep their JSON types); errors name `source`.
  static ConfigDocument from_json(const nlohmann::json& json, const std::string& source);
  static ConfigDocument from_json(const nlohmann::ordered_json& json, const std::string& source);

  ConfigDocument(const ConfigDocument& other);
  ConfigDocument& operator=(const ConfigDocument& other);
  ConfigDocument(ConfigDocument&& other) noexcept;
  ConfigDocument& operator=(ConfigDocument&& other) noexcept;
  ~ConfigDocument();

  // Sets one key from "dotted.key=value"; its origin is "command line (--set ...)".
  void apply_override(const std::string& assignment);
  void apply_overrides(const std::vector<std::string>& assignments);

  // The file (or name) the document was loaded from.
  const std::string& source() const { return files_.front(); }
  // That file and every ancestor it inherits from, child first.
  const std::vector<std::string>& files() const { return files_; }

  TableReader root() const;
  // The table at a dotted path ("model.attention"); a non-existing reader when absent, an
  // error when a part of the path is not a table.
  TableReader table(std::string_view dotted_path) const;
  bool has_table(std::string_view dotted_path) const;

  // The resolved document as TOML text that parses back to the same document.
  std::string to_toml() const;
  // The resolved document as JSON (integers stay integers; dates become strings).
  nlohmann::json to_json() const;

 private:
  ConfigDocument(std::unique_ptr<ConfigNode> root, std::vector<std::string> files);

  std::unique_ptr<ConfigNode> root_;
  std::vector<std::string> files_;
};

template <typename E>
E TableReader::get_enum(
    std::string_view key,
    std::initializer_list<std::pair<std::string_view, std::type_identity_t<E>>> choices,
    E fallback) {
  std::vector<std::string_view> names;
  size_t fallback_index = choices.size();  // get_choice rejects a fallback not among choices
  for (const auto& [name, value] : choices) {
    if (value == fallback) fallback_index = names.size();
    names.push_back(name);
  }
  return (choices.begin() + get_choice(key, names, fallback_index))->second;
}

}  // namespace latte
