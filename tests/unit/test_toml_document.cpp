// ConfigDocument and TableReader: typed reads, error messages (file, line, dotted key, expected,
// got), inherit chains, --set overrides, unknown keys, and the TOML / JSON round trips.
#include <doctest/doctest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/config/toml_document.h"
#include "support/error_text.h"
#include "support/temp_dir.h"

namespace {

using latte::Bounds;
using latte::ConfigDocument;
using latte::TableReader;
using latte::test::error_of;
using latte::test::TempDir;

enum class Color { kRed, kGreen };

}  // namespace

TEST_CASE("typed getters read values, fall back when absent and accept integers as doubles") {
  const ConfigDocument doc = ConfigDocument::parse(R"(
[train]
lr = 3e-4
steps = 100
warmup = 10
name = "run one"
amp = true
color = "green"
dims = [1, 2, 3]
rates = [0.5, 1]
tags = ["a", "b"]
)",
                                                   "cfg.toml");
  TableReader train = doc.table("train");
  CHECK(train.exists());
  CHECK(train.get_double("lr", 0.0) == 3e-4);
  CHECK(train.get_int("steps", 0, Bounds::at_least(1)) == 100);
  CHECK(train.get_double("warmup", 0.0) == 10.0);
  CHECK(train.get_string("name", "") == "run one");
  CHECK(train.get_bool("amp", false) == true);
  CHECK(train.get_enum<Color>("color", {{"red", Color::kRed}, {"green", Color::kGreen}},
                              Color::kRed) == Color::kGreen);
  CHECK(train.get_int_list("dims", {}) == std::vector<int64_t>{1, 2, 3});
  CHECK(train.get_double_list("rates", {}) == std::vector<double>{0.5, 1.0});
  CHECK(train.get_string_list("tags", {}) == std::vector<std::string>{"a", "b"});
  CHECK(train.keys() == std::vector<std::string>{"lr", "steps", "warmup", "name", "amp", "color",
                                                 "dims", "rates", "tags"});
  // Absent keys give the fallback.
  CHECK(train.get_int("missing", 7) == 7);
  CHECK(train.get_double("missing_d", 0.25) == 0.25);
  CHECK(train.get_string("missing_s", "x") == "x");
  CHECK(train.get_enum<Color>("missing_e", {{"red", Color::kRed}, {"green", Color::kGreen}},
                              Color::kRed) == Color::kRed);
  CHECK_NOTHROW(train.reject_unused());

  // An absent table reads as all fallbacks.
  TableReader absent = doc.table("model.moe");
  CHECK_FALSE(absent.exists());
  CHECK(absent.path() == "model.moe");
  CHECK(absent.get_int("n_group", 3) == 3);
  CHECK_FALSE(doc.has_table("model"));
  CHECK(doc.has_table("train"));
  CHECK_NOTHROW(absent.reject_unused());
}

TEST_CASE("wrong types and out-of-range values name file:line, the dotted key, expected and got") {
  TempDir dir;
  const std::string file = dir.write("cfg.toml", R"([t]
i_str = "abc"
i_float = 1.5
neg = -3
d_str = "x"
d_nan = nan
b_int = 1
s_int = 7
e_bad = "fast"
e_int = 3
l_bad = [1, "a"]
sub = 5
d_small = 0.0
big = 9
)");
  const ConfigDocument doc = ConfigDocument::load(file);
  struct Case {
    std::function<void(TableReader&)> read;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](TableReader& t) { t.get_int("i_str", 0); },
       ":2: t.i_str: expected an integer, got string \"abc\""},
      {[](TableReader& t) { t.get_int("i_float", 0); },
       ":3: t.i_float: expected an integer, got float 1.5"},
      {[](TableReader& t) { t.get_int("neg", 0, Bounds::at_least(0)); },
       ":4: t.neg: expected an integer >= 0, got -3"},
      {[](TableReader& t) { t.get_double("d_str", 0); },
       ":5: t.d_str: expected a number, got string \"x\""},
      {[](TableReader& t) { t.get_double("d_nan", 0); },
       ":6: t.d_nan: expected a finite number, got nan"},
      {[](TableReader& t) { t.get_bool("b_int", false); },
       ":7: t.b_int: expected a boolean (true or false), got integer 1"},
      {[](TableReader& t) { t.get_string("s_int", ""); },
       ":8: t.s_int: expected a string, got integer 7"},
      {[](TableReader& t) {
         t.get_enum<Color>("e_bad", {{"red", Color::kRed}, {"green", Color::kGreen}}, Color::kRed);
       },
       ":9: t.e_bad: expected one of \"red\", \"green\", got \"fast\""},
      {[](TableReader& t) {
         t.get_enum<Color>("e_int", {{"red", Color::kRed}, {"green", Color::kGreen}}, Color::kRed);
       },
       ":10: t.e_int: expected one of \"red\", \"green\", got integer 3"},
      {[](TableReader& t) { t.get_int_list("l_bad", {}); },
       ":11: t.l_bad[1]: expected an integer, got string \"a\""},
      {[](TableReader& t) { t.get_int_list("sub", {}); },
       ":12: t.sub: expected an array of integers, got integer 5"},
      {[](TableReader& t) { t.table("sub"); }, ":12: t.sub: expected a table, got integer 5"},
      {[](TableReader& t) { t.get_double("d_small", 1, Bounds::greater_than(0)); },
       ":13: t.d_small: expected a finite number > 0, got 0.0"},
      {[](TableReader& t) { t.get_int("big", 1, Bounds::in_range(1, 8)); },
       ":14: t.big: expected an integer in [1, 8], got 9"},
  };
  for (const auto& c : cases) {
    TableReader t = doc.table("t");
    const std::string message = error_of([&] { c.read(t); });
    CHECK_CONTAINS(message, file + c.expected);
  }
}

TEST_CASE("unknown keys are reported with their line and the closest known name") {
  const ConfigDocument doc = ConfigDocument::parse(R"([model.attention]
q_lora_rank = 1
q_lora_rnk = 2
extra = 3

[model.attention.sub]
x = 1

[stray]
)",
                                                   "x.toml");
  TableReader attention = doc.table("model.attention");
  attention.get_int("q_lora_rank", 0);
  CHECK(error_of([&] { attention.reject_unused(); }) ==
        "x.toml:3: model.attention: unknown key 'q_lora_rnk' (did you mean 'q_lora_rank'?) and 2 "
        "more unknown keys");
  CHECK(error_of([&] {
          attention.check_no_unknown_keys({"q_lora_rank", "q_lora_rnk"});
        }) == "x.toml:4: model.attention: unknown key 'extra' and 1 more unknown key");
  attention.get_int("q_lora_rnk", 0);
  attention.get_int("extra", 0);
  // A sub-table nobody opened is unknown too.
  CHECK_CONTAINS(error_of([&] { attention.reject_unused(); }),
                 "x.toml:6: model.attention: unknown key 'sub'");
  attention.table("sub");
  CHECK_NOTHROW(attention.reject_unused());
  attention.mark_used("sub");

  TableReader root = doc.root();
  root.table("model");
  CHECK(error_of([&] { root.reject_unused(); }) == "x.toml:9: unknown top-level key 'stray'");
  CHECK_NOTHROW(root.check_no_unknown_keys({"model", "stray"}));
}

TEST_CASE("syntax errors and unreadable files name the file and line") {
  TempDir dir;
  const std::string bad = dir.write("bad.toml", "a = 1\n[x]\nb = = 3\n");
  const std::string message = error_of([&] { ConfigDocument::load(bad); });
  CHECK_CONTAINS(message, bad + ":3: TOML syntax error");

  const std::string duplicate = dir.write("dup.toml", "a = 1\nb = 2\na = 3\n");
  CHECK_CONTAINS(
      error_of([&] { ConfigDocument::load(duplicate); }),
      duplicate + ":3: TOML syntax error: toml::insert_value: value (\"a\") already exists");

  // toml11 alone would saturate an integer that does not fit in 64 bits.
  const std::string huge =
      dir.write("huge.toml", "[t]\nok = 9223372036854775807\nn = 99999999999999999999\n");
  CHECK(error_of([&] { ConfigDocument::load(huge); }) ==
        huge + ":3: t.n: integer 99999999999999999999 does not fit in 64 bits");

  const std::string missing = (dir.path() / "nope.toml").string();
  CHECK(error_of([&] { ConfigDocument::load(missing); }) ==
        missing + ": cannot read the config file");
  CHECK(error_of([&] { ConfigDocument::load(dir.path().string()); }) ==
        dir.path().string() + ": cannot read the config file");
}

TEST_CASE("inherit: parents load first, children override, tables merge, paths are relative") {
  TempDir dir;
  const std::string root = dir.write("base/root.toml", R"([model]
vocab_size = 100
hidden_size = 64

[model.attention]
type = "mla"
kv_lora_rank = 16

[train]
lr = 1e-3
)");
  const std::string mid = dir.write("base/mid.toml", R"(inherit = "root.toml"
[model]
hidden_size = 128

[model.rope]
theta = 5e4
)");
  const std::string child = dir.write("exp/child.toml", R"(inherit = "../base/mid.toml"

[model.attention]
kv_lora_rank = 8
impl = "naive"
)");
  const ConfigDocument doc = ConfigDocument::load(child);
  CHECK(doc.source() == child);
  CHECK(doc.files() == std::vector<std::string>{child, mid, root});
  CHECK_FALSE(doc.root().has("inherit"));

  TableReader model = doc.table("model");
  CHECK(model.get_int("vocab_size", 0) == 100);   // from root
  CHECK(model.get_int("hidden_size", 0) == 128);  // mid overrides root
  CHECK(model.origin_of("vocab_size").str() == root + ":2");
  CHECK(model.origin_of("hidden_size").str() == mid + ":3");
  TableReader attention = doc.table("model.attention");
  CHECK(attention.get_string("type", "") == "mla");  // merged from root
  CHECK(attention.get_int("kv_lora_rank", 0) == 8);  // child overrides root
  CHECK(attention.get_string("impl", "") == "naive");
  CHECK(attention.origin_of("kv_lora_rank").str() == child + ":4");
  CHECK(doc.table("model.rope").get_double("theta", 0) == 5e4);
  CHECK(doc.table("train").get_double("lr", 0) == 1e-3);

  // An error on an inherited key names the file that set it.
  TableReader attention_again = doc.table("model.attention");
  CHECK(error_of([&] { attention_again.get_int("type", 0); }) ==
        root + ":6: model.attention.type: expected an integer, got string \"mla\"");
}

TEST_CASE("inherit errors: cycles, missing parents, non-string paths, table/value clashes") {
  TempDir dir;
  const std::string a = dir.write("a.toml", "inherit = \"b.toml\"\nx = 1\n");
  const std::string b = dir.write("b.toml", "\ninherit = \"a.toml\"\n");
  CHECK(error_of([&] { ConfigDocument::load(a); }) ==
        b + ":2: inherit: inheritance cycle: " + a + " -> " + b + " -> " + a);

  const std::string self = dir.write("self.toml", "inherit = \"./self.toml\"\n");
  CHECK_CONTAINS(error_of([&] { ConfigDocument::load(self); }),
                 "inheritance cycle: " + self + " -> " + self);

  const std::string orphan = dir.write("orphan.toml", "# no parent\ninherit = \"missing.toml\"\n");
  CHECK_CONTAINS(error_of([&] { ConfigDocument::load(orphan); }),
                 orphan + ":2: inherit: cannot read the parent config '" +
                     (dir.path() / "missing.toml").string() + "'");

  const std::string number = dir.write("number.toml", "inherit = 3\n");
  CHECK(error_of([&] { ConfigDocument::load(number); }) ==
        number + ":1: inherit: expected a string (the path of the parent config), got integer 3");

  const std::string parent = dir.write("parent.toml", "[model.moe]\nn_group = 2\n");
  const std::string clash =
      dir.write("clash.toml", "inherit = \"parent.toml\"\n[model]\nmoe = 1\n");
  CHECK(error_of([&] { ConfigDocument::load(clash); }) ==
        clash + ":3: model.moe: cannot replace the table from " + parent + ":1 with integer 1");
}

TEST_CASE("--set overrides parse TOML values, create keys and name the command line in errors") {
  ConfigDocument doc = ConfigDocument::parse(R"([train]
lr = 1
[model.attention]
impl = "flash"
[model.mtp]
num_layers = 0
loss_weight = 0.3
)",
                                             "base.toml");
  const ConfigDocument original = doc;
  doc.apply_overrides({"train.lr=3e-4", "model.attention.impl=\"naive\"", "model.moe.n_group=2",
                       " model.flag = true ", "train.dims=[1, 2]", "model.attention.kind=naive",
                       "model.mtp={ num_layers = 1 }", "model.extra={ a = 1.5 }"});
  TableReader train = doc.table("train");
  CHECK(train.get_double("lr", 0) == 3e-4);
  CHECK(train.origin_of("lr").str() == "command line (--set train.lr=3e-4)");
  CHECK(train.get_int_list("dims", {}) == std::vector<int64_t>{1, 2});
  TableReader attention = doc.table("model.attention");
  CHECK(attention.get_string("impl", "") == "naive");
  CHECK(attention.get_string("kind", "") == "naive");  // a bare word is a string
  CHECK(doc.has_table("model.moe"));
  CHECK(doc.table("model.moe").get_int("n_group", 0) == 2);
  CHECK(doc.table("model").get_bool("flag", false));
  TableReader mtp = doc.table("model.mtp");
  CHECK(mtp.get_int("num_layers", 0) == 1);        // an inline table merges
  CHECK(mtp.get_double("loss_weight", 0) == 0.3);  // keys it does not name stay
  CHECK(doc.table("model.extra").get_double("a", 0) == 1.5);
  CHECK(original.table("train").get_double("lr", 0) == 1.0);  // copies are independent

  doc.apply_override("model.attention.q_lora_rank=-3");
  TableReader attention_again = doc.table("model.attention");
  CHECK(error_of([&] { attention_again.get_int("q_lora_rank", 0, Bounds::at_least(0)); }) ==
        "command line (--set model.attention.q_lora_rank=-3): model.attention.q_lora_rank: "
        "expected an integer >= 0, got -3");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"train.lr", "expected KEY=VALUE"},
      {"train..lr=1", "bad key 'train..lr'"},
      {"=1", "bad key ''"},
      {"train.lr=", "train.lr: missing value after '='"},
      {"model.attention.impl=\"naive", "'\"naive' is not a valid TOML value"},
      {"train.dims=[1,", "'[1,' is not a valid TOML value"},
      {"model=3", "model: cannot replace the table from base.toml:"},
      {"model.attention.impl.x=1", "model.attention.impl: is string \"naive\" from command line"},
      {"inherit=a.toml", "inherit: inherit can only be set in a config file"},
  };
  for (const auto& [assignment, expected] : bad) {
    const std::string message = error_of([&] { doc.apply_override(assignment); });
    CHECK_CONTAINS(message, "command line (--set " + assignment + "): ");
    CHECK_CONTAINS(message, expected);
  }
}

TEST_CASE("the resolved document prints as TOML that parses back to the same document") {
  TempDir dir;
  dir.write("parent.toml", R"(top = "parent"
[model]
vocab_size = 256
[model.moe]
)");
  const std::string child = dir.write("child.toml", R"(inherit = "parent.toml"
zeta = 1
alpha = "quote \" backslash \\ tab \t end"
when = 1979-05-27T07:32:00Z
[model]
rms_norm_eps = 1e-6
lr = 0.1
theta = 10000.0
big = 1e20
whole = 2.0
negative = -5
flags = [true, false]
nested = [[1, 2], ["a"]]
points = [{ x = 1, y = 2 }, { x = 3 }]
"odd key" = 1
[model.rope]
type = "yarn"
[[runs]]
name = "first"
[runs.extra]
k = 1
[[runs]]
name = "second"
)");
  ConfigDocument doc = ConfigDocument::load(child);
  doc.apply_override("model.attention.impl=naive");
  const std::string text = doc.to_toml();
  const ConfigDocument back = ConfigDocument::parse(text, "printed.toml");
  CHECK(back.to_json() == doc.to_json());
  CHECK(back.to_toml() == text);
  // Floats print in their shortest exact form and stay floats; file order is kept.
  CHECK_CONTAINS(text, "lr = 0.1\n");
  CHECK_CONTAINS(text, "rms_norm_eps = 1e-06\n");
  CHECK_CONTAINS(text, "theta = 10000.0\n");
  CHECK_CONTAINS(text, "whole = 2.0\n");
  CHECK_CONTAINS(text, "\"odd key\" = 1\n");
  CHECK_CONTAINS(text, "[model.moe]\n");  // an empty table survives: it turns MoE on
  CHECK_CONTAINS(text, "[[runs]]\nname = \"first\"\n\n[runs.extra]\nk = 1\n\n[[runs]]\n");
  CHECK(text.find("top = ") < text.find("zeta = "));
  CHECK(text.find("zeta = ") < text.find("alpha = "));
  CHECK(text.find("inherit") == std::string::npos);
}

TEST_CASE("to_json keeps integers, floats and nesting, from_json reads it back") {
  const ConfigDocument doc = ConfigDocument::parse(R"(d = 1979-05-27
[a]
i = 3
f = 3.0
s = "x"
list = [1, 2.5]
[[a.runs]]
n = 1
)",
                                                   "j.toml");
  const nlohmann::json json = doc.to_json();
  CHECK(json["a"]["i"].is_number_integer());
  CHECK(json["a"]["f"].is_number_float());
  CHECK(json["a"]["f"].get<double>() == 3.0);
  CHECK(json["a"]["s"] == "x");
  CHECK(json["a"]["list"][1].get<double>() == 2.5);
  CHECK(json["a"]["runs"][0]["n"] == 1);
  CHECK(json["d"] == "1979-05-27");

  const ConfigDocument back = ConfigDocument::from_json(json, "checkpoint");
  CHECK(back.to_json() == json);
  CHECK(back.source() == "checkpoint");
  TableReader a = back.table("a");
  CHECK(error_of([&] { a.get_int("f", 0); }) ==
        "checkpoint: a.f: expected an integer, got float 3.0");

  CHECK(error_of([&] {
          ConfigDocument::from_json(nlohmann::json{{"a", nullptr}}, "ck");
        }) == "ck: a: JSON null has no TOML form");
  CHECK(error_of([&] { ConfigDocument::from_json(nlohmann::json::array(), "ck"); }) ==
        "ck: expected a JSON object, got array");
}

TEST_CASE("arrays of tables read as one reader per table") {
  const ConfigDocument doc = ConfigDocument::parse(R"([suite]
name = "s"
[[suite.runs]]
name = "a"
lr = 1e-4
[[suite.runs]]
name = "b"
lr = "fast"
)",
                                                   "suite.toml");
  TableReader suite = doc.table("suite");
  std::vector<TableReader> runs = suite.table_array("runs");
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].path() == "suite.runs[0]");
  CHECK(runs[0].get_string("name", "") == "a");
  CHECK(runs[0].get_double("lr", 0) == 1e-4);
  CHECK(error_of([&] { runs[1].get_double("lr", 0); }) ==
        "suite.toml:8: suite.runs[1].lr: expected a number, got string \"fast\"");
  CHECK(suite.table_array("absent").empty());
  CHECK_CONTAINS(error_of([&] { suite.table_array("name"); }),
                 "suite.toml:2: suite.name: expected an array of tables ([[suite.name]])");
  CHECK_CONTAINS(error_of([&] { doc.table("suite.name.x"); }),
                 "suite.toml:2: suite.name: expected a table, got string \"s\"");
}
