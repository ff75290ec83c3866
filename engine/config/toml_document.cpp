#include "engine/config/toml_document.h"

#include <toml.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "engine/error.h"

namespace latte {

// A TOML date, time or date-time, kept as its TOML text: configs carry them through unchanged.
struct DateTimeText {
  std::string text;
};

struct ConfigNode {
  enum class Kind { kTable, kArray, kValue };
  using Value = std::variant<bool, int64_t, double, std::string, DateTimeText>;

  Kind kind = Kind::kTable;
  ConfigOrigin origin;
  Value value;                                              // kValue
  std::vector<std::pair<std::string, ConfigNode>> members;  // kTable, in document order
  std::vector<ConfigNode> items;                            // kArray

  bool is_table() const { return kind == Kind::kTable; }
  const ConfigNode* member(std::string_view key) const {
    for (const auto& [name, node] : members) {
      if (name == key) return &node;
    }
    return nullptr;
  }
  ConfigNode* member(std::string_view key) {
    return const_cast<ConfigNode*>(std::as_const(*this).member(key));
  }
  // A non-empty array whose items are all tables: written as [[key]] sections.
  bool is_table_array() const {
    return kind == Kind::kArray && !items.empty() &&
           std::all_of(items.begin(), items.end(),
                       [](const ConfigNode& n) { return n.is_table(); });
  }
};

namespace {

using Kind = ConfigNode::Kind;

constexpr std::string_view kInheritKey = "inherit";

// ---------------------------------------------------------------------------------------------
// Formatting values as TOML text

bool is_bare_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string format_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_key(std::string_view key) {
  return is_bare_key(key) ? std::string(key) : format_string(key);
}

// Shortest text that reads back to the same double, made a TOML float ("1.0", not "1").
std::string format_double(double value) {
  if (std::isnan(value)) return std::signbit(value) ? "-nan" : "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, result.ptr);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

// A number as people write it in messages: "8", "0.5", "1e-06".
std::string format_number(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string format_inline(const ConfigNode& node) {
  switch (node.kind) {
    case Kind::kValue:
      return std::visit(
          [](const auto& v) -> std::string {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
            if constexpr (std::is_same_v<T, int64_t>) return std::to_string(v);
            if constexpr (std::is_same_v<T, double>) return format_double(v);
            if constexpr (std::is_same_v<T, std::string>) return format_string(v);
            if constexpr (std::is_same_v<T, DateTimeText>) return v.text;
          },
          node.value);
    case Kind::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < node.items.size(); ++i) {
        out += (i ? ", " : "") + format_inline(node.items[i]);
      }
      return out + "]";
    }
    case Kind::kTable: {
      if (node.members.empty()) return "{}";
      std::string out = "{ ";
      for (size_t i = 0; i < node.members.size(); ++i) {
        out += (i ? ", " : "") + format_key(node.members[i].first) + " = " +
               format_inline(node.members[i].second);
      }
      return out + " }";
    }
  }
  return {};
}

std::string kind_name(const ConfigNode& node) {
  switch (node.kind) {
    case Kind::kTable:
      return "table";
    case Kind::kArray:
      return "array";
    case Kind::kValue:
      break;
  }
  switch (node.value.index()) {
    case 0:
      return "boolean";
    case 1:
      return "integer";
    case 2:
      return "float";
    case 3:
      return "string";
    default:
      return "date-time";
  }
}

// "string \"abc\"", "integer 3", "table { a = 1 }": what a message says was found.
std::string describe(const ConfigNode& node) {
  std::string text = format_inline(node);
  constexpr size_t kMaxText = 60;
  if (text.size() > kMaxText) text = text.substr(0, kMaxText) + "...";
  return kind_name(node) + " " + text;
}

std::string join_path(std::string_view path, std::string_view key) {
  std::string out(path);
  if (!out.empty()) out += '.';
  return out + format_key(key);
}

[[noreturn]] void fail_at(const ConfigOrigin& origin, std::string_view key,
                          const std::string& message) {
  if (key.empty()) LATTE_FAIL() << origin.str() << ": " << message;
  LATTE_FAIL() << origin.str() << ": " << key << ": " << message;
}

// ---------------------------------------------------------------------------------------------
// Reading TOML text

// toml11 saturates integers that do not fit 64 bits; re-reads the literal at the extremes.
int64_t checked_integer(const toml::value& value, const ConfigOrigin& origin,
                        const std::string& path) {
  const int64_t result = value.as_integer();
  if (result != std::numeric_limits<int64_t>::max() &&
      result != std::numeric_limits<int64_t>::min()) {
    return result;
  }
  const toml::source_location location = value.location();
  std::string literal = location.line_str().substr(location.column() - 1, location.region());
  std::erase(literal, '_');
  std::string_view digits = literal;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) digits.remove_prefix(1);
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' &&
      std::string_view("xob").find(digits[1]) != std::string_view::npos) {
    base = digits[1] == 'x' ? 16 : digits[1] == 'o' ? 8 : 2;
    digits.remove_prefix(2);
  }
  const std::string signed_digits = (negative ? "-" : "") + std::string(digits);
  int64_t parsed = 0;
  const auto [end, error] = std::from_chars(
      signed_digits.data(), signed_digits.data() + signed_digits.size(), parsed, base);
  if (error == std::errc::result_out_of_range) {
    fail_at(origin, path, "integer " + literal + " does not fit in 64 bits");
  }
  return result;
}

ConfigNode from_toml(const toml::value& value, const std::string& source, const std::string& path) {
  ConfigNode node;
  node.origin = {source, static_cast<int64_t>(value.location().line())};
  switch (value.type()) {
    case toml::value_t::table: {
      node.kind = Kind::kTable;
      // toml11 keeps tables unordered: restore the order of the file from the locations.
      std::vector<std::pair<std::string, const toml::value*>> entries;
      for (const auto& [key, member] : value.as_table()) entries.emplace_back(key, &member);
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const auto la = a.second->location(), lb = b.second->location();
        return std::tuple(la.line(), la.column(), a.first) <
               std::tuple(lb.line(), lb.column(), b.first);
      });
      for (const auto& [key, member] : entries) {
        node.members.emplace_back(key, from_toml(*member, source, join_path(path, key)));
      }
      break;
    }
    case toml::value_t::array:
      node.kind = Kind::kArray;
      for (const auto& item : value.as_array()) {
        const std::string item_path = path + "[" + std::to_string(node.items.size()) + "]";
        node.items.push_back(from_toml(item, source, item_path));
      }
      break;
    case toml::value_t::boolean:
      node.kind = Kind::kValue;
      node.value = value.as_boolean();
      break;
    case toml::value_t::integer:
      node.kind = Kind::kValue;
      node.value = checked_integer(value, node.origin, path);
      break;
    case toml::value_t::floating:
      node.kind = Kind::kValue;
      node.value = value.as_floating();
      break;
    case toml::value_t::string:
      node.kind = Kind::kValue;
      node.value = value.as_string().str;
      break;
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time:
      node.kind = Kind::kValue;
      node.value = DateTimeText{toml::format(value)};
      break;
    case toml::value_t::empty:
      fail_at(node.origin, path, "empty TOML value");
  }
  return node;
}

// First line of a toml11 message, without its "[error] " prefix.
std::string toml_message_headline(const std::string& what) {
  std::string line = what.substr(0, what.find('\n'));
  constexpr std::string_view kPrefix = "[error] ";
  if (line.rfind(kPrefix, 0) == 0) line.erase(0, kPrefix.size());
  while (!line.empty() && (line.back() == ' ' || line.back() == ':')) line.pop_back();
  return line;
}

// The rest of a toml11 message (the quoted source lines), starting with its newline.
std::string toml_message_details(const std::string& what) {
  const size_t newline = what.find('\n');
  return newline == std::string::npos ? "" : what.substr(newline);
}

ConfigNode parse_toml_text(std::string_view text, const std::string& name) {
  std::istringstream stream{std::string(text)};
  toml::value value;
  try {
    value = toml::parse(stream, name);
  } catch (const toml::exception& e) {
    LATTE_FAIL() << ConfigOrigin{name, static_cast<int64_t>(e.location().line())}.str()
                 << ": TOML syntax error: " << toml_message_headline(e.what())
                 << toml_message_details(e.what());
  } catch (const std::exception& e) {
    LATTE_FAIL() << name << ": TOML syntax error: " << e.what();
  }
  return from_toml(value, name, "");
}

std::optional<std::string> read_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// ---------------------------------------------------------------------------------------------
// Merging (child over parent, override over file)

// Overlays table `src` on table `dst`: new keys are appended, tables merge recursively, other
// values replace; a table may not replace a value or the reverse.
void merge_into(ConfigNode& dst, const ConfigNode& src, const std::string& path) {
  for (const auto& [key, child] : src.members) {
    const std::string key_path = join_path(path, key);
    ConfigNode* existing = dst.member(key);
    if (existing == nullptr) {
      dst.members.emplace_back(key, child);
    } else if (existing->is_table() && child.is_table()) {
      existing->origin = child.origin;
      merge_into(*existing, child, key_path);
    } else if (existing->is_table()) {
      fail_at(
          child.origin, key_path,
          "cannot replace the table from " + existing->origin.str() + " with " + describe(child));
    } else if (child.is_table()) {
      fail_at(child.origin, key_path,
              "cannot replace " + describe(*existing) + " from " + existing->origin.str() +
                  " with a table");
    } else {
      *existing = child;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// inherit

struct InheritChain {
  std::vector<std::string> canonical;  // files being loaded, outermost first
  std::vector<std::string> shown;      // the same, as written in messages
  std::vector<std::string> files;      // every file read, child first
};

std::string canonical_path(const std::string& path) {
  std::error_code error;
  const auto canonical = std::filesystem::weakly_canonical(path, error);
  return error ? std::filesystem::absolute(path).lexically_normal().string() : canonical.string();
}

// Resolves the document `text` read from `name` against its inherit chain.
ConfigNode resolve_inherit(std::string_view text, const std::string& name, InheritChain& chain) {
  chain.canonical.push_back(canonical_path(name));
  chain.shown.push_back(name);
  chain.files.push_back(name);
  ConfigNode root = parse_toml_text(text, name);

  const auto inherit_it =
      std::find_if(root.members.begin(), root.members.end(),
                   [](const auto& member) { return member.first == kInheritKey; });
  if (inherit_it != root.members.end()) {
    const ConfigNode inherit = inherit_it->second;
    root.members.erase(inherit_it);
    if (inherit.kind != Kind::kValue || !std::holds_alternative<std::string>(inherit.value)) {
      fail_at(inherit.origin, kInheritKey,
              "expected a string (the path of the parent config), got " + describe(inherit));
    }
    const std::string& relative = std::get<std::string>(inherit.value);
    const std::string parent_name =
        (std::filesystem::path(name).parent_path() / relative).lexically_normal().string();
    const std::string parent_canonical = canonical_path(parent_name);
    if (std::find(chain.canonical.begin(), chain.canonical.end(), parent_canonical) !=
        chain.canonical.end()) {
      std::string cycle;
      for (const auto& shown : chain.shown) cycle += shown + " -> ";
      fail_at(inherit.origin, kInheritKey, "inheritance cycle: " + cycle + parent_name);
    }
    const std::optional<std::string> parent_text = read_file(parent_name);
    if (!parent_text) {
      fail_at(inherit.origin, kInheritKey,
              "cannot read the parent config '" + parent_name + "' (" + relative +
                  " relative to the directory of " + name + ")");
    }
    ConfigNode merged = resolve_inherit(*parent_text, parent_name, chain);
    merged.origin = root.origin;
    merge_into(merged, root, "");
    root = std::move(merged);
  }
  chain.canonical.pop_back();
  chain.shown.pop_back();
  return root;
}

// ---------------------------------------------------------------------------------------------
// Overrides

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

std::vector<std::string> split_dotted(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

void set_origin(ConfigNode& node, const ConfigOrigin& origin) {
  node.origin = origin;
  for (auto& [key, member] : node.members) set_origin(member, origin);
  for (auto& item : node.items) set_origin(item, origin);
}

ConfigNode parse_override_value(const std::string& text, const ConfigOrigin& origin,
                                const std::string& key) {
  if (text.empty()) fail_at(origin, key, "missing value after '='");
  if (text.find_first_of("\r\n") != std::string::npos) {
    fail_at(origin, key, "the value may not span several lines");
  }
  ConfigNode value;
  try {
    std::istringstream stream("v = " + text + "\n");
    const toml::value parsed = toml::parse(stream, origin.source);
    value = from_toml(parsed.as_table().at("v"), origin.source, key);
  } catch (const toml::exception& e) {
    if (std::string_view("\"'[{").find(text.front()) != std::string_view::npos) {
      fail_at(origin, key,
              "'" + text + "' is not a valid TOML value: " + toml_message_headline(e.what()));
    }
    value.kind = Kind::kValue;
    value.value = text;  // a bare word such as naive is a string
  }
  set_origin(value, origin);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Writing

void write_table(std::string& out, const ConfigNode& table, const std::string& header) {
  for (const auto& [key, member] : table.members) {
    if (!member.is_table() && !member.is_table_array()) {
      out += format_key(key) + " = " + format_inline(member) + "\n";
    }
  }
  for (const auto& [key, member] : table.members) {
    const std::string path = header.empty() ? format_key(key) : header + "." + format_key(key);
    if (member.is_table()) {
      out += "\n[" + path + "]\n";
      write_table(out, member, path);
    } else if (member.is_table_array()) {
      for (const auto& item : member.items) {
        out += "\n[[" + path + "]]\n";
        write_table(out, item, path);
      }
    }
  }
}

nlohmann::json node_to_json(const ConfigNode& node) {
  switch (node.kind) {
    case Kind::kTable: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& [key, member] : node.members) object[key] = node_to_json(member);
      return object;
    }
    case Kind::kArray: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& item : node.items) array.push_back(node_to_json(item));
      return array;
    }
    case Kind::kValue:
      break;
  }
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, DateTimeText>) {
          return v.text;
        } else {
          return v;
        }
      },
      node.value);
}

template <typename Json>
ConfigNode node_from_json(const Json& json, const ConfigOrigin& origin, const std::string& path) {
  ConfigNode node;
  node.origin = origin;
  if (json.is_object()) {
    node.kind = Kind::kTable;
    for (const auto& [key, member] : json.items()) {
      node.members.emplace_back(key, node_from_json(member, origin, join_path(path, key)));
    }
    return node;
  }
  if (json.is_array()) {
    node.kind = Kind::kArray;
    for (size_t i = 0; i < json.size(); ++i) {
      node.items.push_back(node_from_json(json[i], origin, path + "[" + std::to_string(i) + "]"));
    }
    return node;
  }
  node.kind = Kind::kValue;
  if (json.is_boolean()) {
    node.value = json.template get<bool>();
  } else if (json.is_number_unsigned()) {
    const auto value = json.template get<uint64_t>();
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail_at(origin, path, "integer " + std::to_string(value) + " does not fit a TOML integer");
    }
    node.value = static_cast<int64_t>(value);
  } else if (json.is_number_integer()) {
    node.value = json.template get<int64_t>();
  } else if (json.is_number_float()) {
    node.value = json.template get<double>();
  } else if (json.is_string()) {
    node.value = json.template get<std::string>();
  } else {
    fail_at(origin, path, std::string("JSON ") + json.type_name() + " has no TOML form");
  }
  return node;
}

template <typename Json>
std::unique_ptr<ConfigNode> root_from_json(const Json& json, const std::string& source) {
  const ConfigOrigin origin{source, 0};
  if (!json.is_object()) {
    fail_at(origin, "", std::string("expected a JSON object, got ") + json.type_name());
  }
  return std::make_unique<ConfigNode>(node_from_json(json, origin, ""));
}

// ---------------------------------------------------------------------------------------------
// Unknown-key suggestions

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Whether `candidate` is a likely intended spelling of `name`: a few edits away, or one a
// prefix of the other ("vocab" for "vocab_size").
bool is_near(const std::string& name, const std::string& candidate, size_t distance) {
  const size_t shorter = std::min(name.size(), candidate.size());
  const bool prefix = shorter >= 4 && (name.starts_with(candidate) || candidate.starts_with(name));
  return prefix || distance <= std::max<size_t>(1, shorter / 3);
}

// The nearest candidate to `name` when it is a likely misspelling of it, else "".
std::string closest(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : candidates) {
    const size_t distance = edit_distance(name, candidate);
    if (distance < best_distance && is_near(name, candidate, distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// ConfigOrigin, Bounds

std::string ConfigOrigin::str() const {
  return line > 0 ? source + ":" + std::to_string(line) : source;
}

bool Bounds::contains(double value) const {
  if (min && !(min_exclusive ? value > *min : value >= *min)) return false;
  if (max && !(value <= *max)) return false;
  return true;
}

std::string Bounds::describe() const {
  if (min && max) return "in [" + format_number(*min) + ", " + format_number(*max) + "]";
  if (min) return (min_exclusive ? "> " : ">= ") + format_number(*min);
  if (max) return "<= " + format_number(*max);
  return "";
}

// -----------------------------------------------------------------------------------------------
// TableReader

TableReader::TableReader(const ConfigNode* node, std::string path, ConfigOrigin fallback_origin)
    : node_(node), path_(std::move(path)), fallback_origin_(std::move(fallback_origin)) {}

std::string TableReader::key_path(std::string_view key) const {
  return join_path(path_, key);
}

ConfigOrigin TableReader::origin() const {
  return node_ ? node_->origin : fallback_origin_;
}

ConfigOrigin TableReader::origin_of(std::string_view key) const {
  const ConfigNode* member = node_ ? node_->member(key) : nullptr;
  return member ? member->origin : origin();
}

bool TableReader::has(std::string_view key) const {
  return node_ && node_->member(key);
}

bool TableReader::has_table(std::string_view key) const {
  const ConfigNode* member = node_ ? node_->member(key) : nullptr;
  return member && member->is_table();
}

std::vector<std::string> TableReader::keys() const {
  std::vector<std::string> names;
  if (node_) {
    for (const auto& [key, member] : node_->members) names.push_back(key);
  }
  return names;
}

const ConfigNode* TableReader::find(std::string_view key) {
  asked_.emplace(key);
  return node_ ? node_->member(key) : nullptr;
}

void TableReader::mark_used(std::string_view key) {
  asked_.emplace(key);
}

void TableReader::fail(std::string_view key, const std::string& message) const {
  fail_at(origin_of(key), key_path(key), message);
}

namespace {

// "an integer >= 0" / "a number > 0" / "an integer".
std::string expected_number(bool integer, const Bounds& bounds) {
  std::string text = integer ? "an integer" : "a number";
  const std::string range = bounds.describe();
  return range.empty() ? text : text + " " + range;
}

std::optional<int64_t> as_int(const ConfigNode& node) {
  if (node.kind == Kind::kValue && std::holds_alternative<int64_t>(node.value)) {
    return std::get<int64_t>(node.value);
  }
  return std::nullopt;
}

std::optional<double> as_double(const ConfigNode& node) {
  if (node.kind != Kind::kValue) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(&node.value)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&node.value)) return *d;
  return std::nullopt;
}

std::optional<std::string> as_string(const ConfigNode& node) {
  if (node.kind == Kind::kValue && std::holds_alternative<std::string>(node.value)) {
    return std::get<std::string>(node.value);
  }
  return std::nullopt;
}

// Checks one value read by get_int / get_double; `where` names it in errors.
int64_t checked_int(const ConfigNode& node, const Bounds& bounds, const std::string& where) {
  const auto value = as_int(node);
  if (!value) {
    fail_at(node.origin, where,
            "expected " + expected_number(true, bounds) + ", got " + describe(node));
  }
  if (!bounds.contains(static_cast<double>(*value))) {
    fail_at(node.origin, where,
            "expected " + expected_number(true, bounds) + ", got " + std::to_string(*value));
  }
  return *value;
}

double checked_double(const ConfigNode& node, const Bounds& bounds, const std::string& where) {
  const auto value = as_double(node);
  if (!value) {
    fail_at(node.origin, where,
            "expected " + expected_number(false, bounds) + ", got " + describe(node));
  }
  if (!std::isfinite(*value) || !bounds.contains(*value)) {
    fail_at(node.origin, where,
            "expected a finite number" +
                (bounds.describe().empty() ? "" : " " + bounds.describe()) + ", got " +
                format_inline(node));
  }
  return *value;
}

// The items of an array value, or an error naming what was expected of each.
const std::vector<ConfigNode>& checked_array(const ConfigNode& node, const std::string& where,
                                             const std::string& item_kind) {
  if (node.kind != Kind::kArray) {
    fail_at(node.origin, where, "expected an array of " + item_kind + ", got " + describe(node));
  }
  return node.items;
}

std::string item_path(const std::string& where, size_t index) {
  return where + "[" + std::to_string(index) + "]";
}

}  // namespace

int64_t TableReader::get_int(std::string_view key, int64_t fallback, const Bounds& bounds) {
  const ConfigNode* node = find(key);
  return node ? checked_int(*node, bounds, key_path(key)) : fallback;
}

double TableReader::get_double(std::string_view key, double fallback, const Bounds& bounds) {
  const ConfigNode* node = find(key);
  return node ? checked_double(*node, bounds, key_path(key)) : fallback;
}

bool TableReader::get_bool(std::string_view key, bool fallback) {
  const ConfigNode* node = find(key);
  if (!node) return fallback;
  if (node->kind != Kind::kValue || !std::holds_alternative<bool>(node->value)) {
    fail(key, "expected a boolean (true or false), got " + describe(*node));
  }
  return std::get<bool>(node->value);
}

std::string TableReader::get_string(std::string_view key, const std::string& fallback) {
  const ConfigNode* node = find(key);
  if (!node) return fallback;
  const auto value = as_string(*node);
  if (!value) fail(key, "expected a string, got " + describe(*node));
  return *value;
}

size_t TableReader::get_choice(std::string_view key, const std::vector<std::string_view>& names,
                               size_t fallback) {
  LATTE_CHECK(fallback < names.size())
      << "TableReader::get_enum: the fallback for " << key_path(key) << " is not among its choices";
  const ConfigNode* node = find(key);
  if (!node) return fallback;
  std::string expected = "expected one of ";
  for (size_t i = 0; i < names.size(); ++i) {
    expected += (i ? ", " : "") + format_string(names[i]);
  }
  const auto value = as_string(*node);
  if (!value) fail(key, expected + ", got " + describe(*node));
  const auto it = std::find(names.begin(), names.end(), *value);
  if (it == names.end()) fail(key, expected + ", got " + format_string(*value));
  return static_cast<size_t>(it - names.begin());
}

std::vector<int64_t> TableReader::get_int_list(std::string_view key,
                                               const std::vector<int64_t>& fallback,
                                               const Bounds& bounds) {
  const ConfigNode* node = find(key);
  if (!node) return fallback;
  const std::string where = key_path(key);
  std::vector<int64_t> values;
  const auto& items = checked_array(*node, where, "integers");
  for (size_t i = 0; i < items.size(); ++i) {
    values.push_back(checked_int(items[i], bounds, item_path(where, i)));
  }
  return values;
}

std::vector<double> TableReader::get_double_list(std::string_view key,
                                                 const std::vector<double>& fallback,
                                                 const Bounds& bounds) {
  const ConfigNode* node = find(key);
  if (!node) return fallback;
  const std::string where = key_path(key);
  std::vector<double> values;
  const auto& items = checked_array(*node, where, "numbers");
  for (size_t i = 0; i < items.size(); ++i) {
    values.push_back(checked_double(items[i], bounds, item_path(where, i)));
  }
  return values;
}

std::vector<std::string> TableReader::get_string_list(std::string_view key,
                                                      const std::vector<std::string>& fallback) {
  const ConfigNode* node = find(key);
  if (!node) return fallback;
  const std::string where = key_path(key);
  std::vector<std::string> values;
  const auto& items = checked_array(*node, where, "strings");
  for (size_t i = 0; i < items.size(); ++i) {
    const auto value = as_string(items[i]);
    if (!value) {
      fail_at(items[i].origin, item_path(where, i), "expected a string, got " + describe(items[i]));
    }
    values.push_back(*value);
  }
  return values;
}

TableReader TableReader::table(std::string_view key) {
  const ConfigNode* node = find(key);
  if (!node) return TableReader(nullptr, key_path(key), origin());
  if (!node->is_table()) fail(key, "expected a table, got " + describe(*node));
  return TableReader(node, key_path(key), node->origin);
}

std::vector<TableReader> TableReader::table_array(std::string_view key) {
  const ConfigNode* node = find(key);
  if (!node) return {};
  const std::string where = key_path(key);
  if (node->kind != Kind::kArray ||
      !std::all_of(node->items.begin(), node->items.end(),
                   [](const ConfigNode& item) { return item.is_table(); })) {
    fail(key, "expected an array of tables ([[" + where + "]]), got " + describe(*node));
  }
  std::vector<TableReader> tables;
  for (size_t i = 0; i < node->items.size(); ++i) {
    tables.push_back(TableReader(&node->items[i], item_path(where, i), node->items[i].origin));
  }
  return tables;
}

void TableReader::fail_unknown(const ConfigNode& member, const std::string& name,
                               const std::vector<std::string>& candidates,
                               size_t more_unknown) const {
  std::string message = (path_.empty() ? "unknown top-level key '" : "unknown key '") + name + "'";
  const std::string suggestion = closest(name, candidates);
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  if (more_unknown > 0) {
    message += " and " + std::to_string(more_unknown) + " more unknown key" +
               (more_unknown > 1 ? "s" : "");
  }
  fail_at(member.origin, path_, message);
}

void TableReader::reject_unused() const {
  if (!node_) return;
  std::vector<const std::pair<std::string, ConfigNode>*> unused;
  for (const auto& member : node_->members) {
    if (!asked_.contains(member.first)) unused.push_back(&member);
  }
  if (unused.empty()) return;
  const std::vector<std::string> asked(asked_.begin(), asked_.end());
  fail_unknown(unused.front()->second, unused.front()->first, asked, unused.size() - 1);
}

void TableReader::check_no_unknown_keys(const std::vector<std::string>& allowed) const {
  if (!node_) return;
  std::vector<const std::pair<std::string, ConfigNode>*> unknown;
  for (const auto& member : node_->members) {
    if (std::find(allowed.begin(), allowed.end(), member.first) == allowed.end()) {
      unknown.push_back(&member);
    }
  }
  if (unknown.empty()) return;
  fail_unknown(unknown.front()->second, unknown.front()->first, allowed, unknown.size() - 1);
}

// -----------------------------------------------------------------------------------------------
// ConfigDocument

ConfigDocument::ConfigDocument(std::unique_ptr<ConfigNode> root, std::vector<std::string> files)
    : root_(std::move(root)), files_(std::move(files)) {}

ConfigDocument::ConfigDocument(const ConfigDocument& other)
    : root_(std::make_unique<ConfigNode>(*other.root_)), files_(other.files_) {}

ConfigDocument& ConfigDocument::operator=(const ConfigDocument& other) {
  if (this != &other) {
    root_ = std::make_unique<ConfigNode>(*other.root_);
    files_ = other.files_;
  }
  return *this;
}

ConfigDocument::ConfigDocument(ConfigDocument&& other) noexcept = default;
ConfigDocument& ConfigDocument::operator=(ConfigDocument&& other) noexcept = default;
ConfigDocument::~ConfigDocument() = default;

ConfigDocument ConfigDocument::load(const std::string& path) {
  const std::optional<std::string> text = read_file(path);
  LATTE_CHECK(text) << path << ": cannot read the config file";
  return parse(*text, path);
}

ConfigDocument ConfigDocument::parse(std::string_view text, const std::string& name) {
  InheritChain chain;
  auto root = std::make_unique<ConfigNode>(resolve_inherit(text, name, chain));
  return ConfigDocument(std::move(root), std::move(chain.files));
}

ConfigDocument ConfigDocument::from_json(const nlohmann::json& json, const std::string& source) {
  return ConfigDocument(root_from_json(json, source), {source});
}

ConfigDocument ConfigDocument::from_json(const nlohmann::ordered_json& json,
                                         const std::string& source) {
  return ConfigDocument(root_from_json(json, source), {source});
}

void ConfigDocument::apply_override(const std::string& assignment) {
  const ConfigOrigin origin{"command line (--set " + assignment + ")", 0};
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos) {
    fail_at(origin, "", "expected KEY=VALUE with a dotted KEY, e.g. model.attention.impl=naive");
  }
  const std::string key = trim(std::string_view(assignment).substr(0, equals));
  const std::vector<std::string> parts = split_dotted(key);
  for (const auto& part : parts) {
    if (!is_bare_key(part)) {
      fail_at(origin, "",
              "bad key '" + key +
                  "': expected dotted names of letters, digits, '_' and '-', e.g. train.lr");
    }
  }
  if (key == kInheritKey) fail_at(origin, key, "inherit can only be set in a config file");
  ConfigNode value =
      parse_override_value(trim(std::string_view(assignment).substr(equals + 1)), origin, key);

  ConfigNode* table = root_.get();
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join_path(path, parts[i]);
    ConfigNode* next = table->member(parts[i]);
    if (next == nullptr) {
      ConfigNode created;
      created.origin = origin;
      table->members.emplace_back(parts[i], std::move(created));
      next = &table->members.back().second;
    } else if (!next->is_table()) {
      fail_at(origin, path,
              "is " + describe(*next) + " from " + next->origin.str() + ", not a table");
    }
    table = next;
  }
  ConfigNode wrapper;
  wrapper.members.emplace_back(parts.back(), std::move(value));
  merge_into(*table, wrapper, path);
}

void ConfigDocument::apply_overrides(const std::vector<std::string>& assignments) {
  for (const auto& assignment : assignments) apply_override(assignment);
}

TableReader ConfigDocument::root() const {
  return TableReader(root_.get(), "", root_->origin);
}

TableReader ConfigDocument::table(std::string_view dotted_path) const {
  const ConfigNode* node = root_.get();
  std::string path;
  for (const auto& part : split_dotted(dotted_path)) {
    const ConfigNode* next = node->member(part);
    const std::string next_path = join_path(path, part);
    if (next == nullptr) return TableReader(nullptr, std::string(dotted_path), node->origin);
    if (!next->is_table())
      fail_at(next->origin, next_path, "expected a table, got " + describe(*next));
    node = next;
    path = next_path;
  }
  return TableReader(node, path, node->origin);
}

bool ConfigDocument::has_table(std::string_view dotted_path) const {
  const ConfigNode* node = root_.get();
  for (const auto& part : split_dotted(dotted_path)) {
    node = node->member(part);
    if (node == nullptr || !node->is_table()) return false;
  }
  return true;
}

std::string ConfigDocument::to_toml() const {
  std::string out;
  write_table(out, *root_, "");
  if (!out.empty() && out.front() == '\n') out.erase(0, 1);
  return out;
}

nlohmann::json ConfigDocument::to_json() const {
  return node_to_json(*root_);
}

}  // namespace latte
