#include "engine/train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/tensor_file.h"

namespace latte {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "step_";

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08lld", kPrefix, static_cast<long long>(step));
  return buf;
}

// Complete checkpoints (final names only), oldest first.
std::vector<fs::path> checkpoints(const std::string& run_dir) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(kPrefix, 0) == 0 &&
        name.find('.') == std::string::npos && fs::exists(entry.path() / "state.json"))
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Module::NamedTensors model_tensors(const Module& model) {
  Module::NamedTensors all = model.named_parameters();
  for (auto& b : model.named_buffers()) all.push_back(b);
  return all;
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, int64_t step, const Module& model,
                            const AdamW& optimizer, const nlohmann::json& state, int64_t keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  fs::create_directories(root, ec);
  LATTE_CHECK(!ec) << "checkpoint: cannot create " << root.string() << ": " << ec.message();
  const fs::path final_dir = root / step_name(step);
  const fs::path tmp_dir = root / (step_name(step) + ".tmp");
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  LATTE_CHECK(!ec) << "checkpoint: cannot create " << tmp_dir.string() << ": " << ec.message();
  save_tensors((tmp_dir / "model.safetensors").string(), model_tensors(model));
  save_tensors((tmp_dir / "optimizer.safetensors").string(), optimizer.state());
  write_file_atomically((tmp_dir / "state.json").string(), state.dump(2) + "\n");
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  LATTE_CHECK(!ec) << "checkpoint: cannot rename " << tmp_dir.string() << " to "
                   << final_dir.string() << ": " << ec.message();
  const auto all = checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i], ec);
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const auto all = checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().string();
}

nlohmann::json load_checkpoint(const std::string& folder, const Module& model, AdamW& optimizer) {
  const fs::path dir(folder);
  load_into((dir / "model.safetensors").string(), model_tensors(model));
  const NamedTensors moments = load_tensors((dir / "optimizer.safetensors").string());
  std::ifstream in(dir / "state.json");
  LATTE_CHECK(in.good()) << "checkpoint " << folder << ": cannot read state.json";
  nlohmann::json state;
  try {
    in >> state;
  } catch (const nlohmann::json::exception& e) {
    LATTE_FAIL() << "checkpoint " << folder << "/state.json: invalid JSON (" << e.what() << ")";
  }
  LATTE_CHECK(state.contains("step") && state["step"].is_number_integer())
      << "checkpoint " << folder << "/state.json: missing integer 'step'";
  optimizer.load_state(moments, state["step"].get<int64_t>());
  return state;
}

}  // namespace latte
