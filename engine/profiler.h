// A minimal built-in profiler: wall time accumulated per category (GEMMs, the attention core,
// MoE routing and permutation, optimizer, …) by scoped timers placed in the ops. Off by default;
// when off a scope costs one branch. Not thread-safe: ops run on the calling thread (OpenMP
// parallelism is inside them).
#pragma once

#include <array>
#include <chrono>
#include <string>

namespace latte::profiler {

enum class Category { kGemm, kAttention, kMoe, kOptimizer, kCount };

const char* category_name(Category c);

void set_enabled(bool enabled);
bool enabled();
void reset();
double seconds(Category c);

class Scope {
 public:
  explicit Scope(Category c) : category_(c), active_(enabled()) {
    if (active_) start_ = std::chrono::steady_clock::now();
  }
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Category category_;
  bool active_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace latte::profiler
