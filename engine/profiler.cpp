#include "engine/profiler.h"

namespace latte::profiler {

namespace {
bool g_enabled = false;
std::array<double, static_cast<size_t>(Category::kCount)> g_seconds{};
}  // namespace

const char* category_name(Category c) {
  switch (c) {
    case Category::kGemm:
      return "GEMMs (linear, matmul)";
    case Category::kAttention:
      return "attention core";
    case Category::kMoe:
      return "MoE routing + permutation";
    case Category::kOptimizer:
      return "optimizer";
    case Category::kCount:
      break;
  }
  return "?";
}

void set_enabled(bool enabled) {
  g_enabled = enabled;
}
bool enabled() {
  return g_enabled;
}
void reset() {
  g_seconds.fill(0.0);
}
double seconds(Category c) {
  return g_seconds[static_cast<size_t>(c)];
}

Scope::~Scope() {
  if (!active_) return;
  g_seconds[static_cast<size_t>(category_)] +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace latte::profiler
