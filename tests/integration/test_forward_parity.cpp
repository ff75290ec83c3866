// `latte forward` on every fixture of tests/fixtures against the independent PyTorch reference
// (tools/reference). Tolerances (relative to each tensor's largest magnitude): 1e-4 for logits
// and losses, 1e-3 for gradients — latte computes in float32 (rounding ~1e-7 per op, amplified
// through a few layers and softmaxes), the reference in float64 on identical float32 weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "engine/io/tensor_file.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

using namespace latte;
namespace fs = std::filesystem;

namespace {

double relative_error(const Tensor& actual, const Tensor& expected) {
  const auto a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double scale = 0, worst = 0;
  for (double v : e) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - e[i]));
  return scale > 0 ? worst / scale : worst;
}

std::vector<fs::path> fixture_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(fs::path(LATTE_SOURCE_DIR) / "tests/fixtures"))
    if (entry.is_directory()) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace

TEST_CASE("latte forward matches the PyTorch reference on every fixture") {
  const auto dirs = fixture_dirs();
  REQUIRE(dirs.size() >= 15);
  for (const fs::path& dir : dirs) {
    SUBCASE(dir.filename().string().c_str()) {
      test::TempDir tmp;
      const std::string out = (tmp.path() / "out.safetensors").string();
      const auto r = test::run_latte("forward " + (dir / "config.toml").string() + " --weights " +
                                     (dir / "weights.safetensors").string() + " --tokens " +
                                     (dir / "tokens.txt").string() + " --out " + out + " --grads");
      INFO(r.output);
      REQUIRE(r.exit_code == 0);
      std::map<std::string, Tensor> got;
      for (auto& [name, t] : load_tensors(out)) got[name] = t;
      int compared = 0;
      for (auto& [name, expected] : load_tensors((dir / "expected.safetensors").string())) {
        INFO(dir.filename().string() << ": " << name);
        REQUIRE(got.count(name) == 1);
        REQUIRE(got[name].shape() == expected.shape());
        const double tol = name.rfind("grad.", 0) == 0 ? 1e-3 : 1e-4;
        CHECK(relative_error(got[name], expected) < tol);
        ++compared;
      }
      CHECK(compared == static_cast<int>(got.size()));  // nothing extra, nothing missing
    }
  }
}
