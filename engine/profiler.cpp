#include "engine/profiler.h"

#include <array>
#include <chrono>

#include "engine/error.h"

namespace latte::profiler {

namespace {

constexpr size_t kCategories = static_cast<size_t>(Category::kCount);
// The owner of an interval during which no scope was open.
constexpr Category kOutside = Category::kCount;

class SteadyClock final : public Timer {
 public:
  void mark() noexcept override { marks_.push_back(std::chrono::steady_clock::now()); }
  std::vector<double> take_intervals() override {
    std::vector<double> out;
    for (size_t i = 1; i < marks_.size(); ++i)
      out.push_back(std::chrono::duration<double>(marks_[i] - marks_[i - 1]).count());
    marks_.clear();
    return out;
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

struct State {
  Timer* timer = nullptr;        // set while started
  std::vector<Category> open;    // open scopes, innermost last
  std::vector<Category> owners;  // owners[i]: the interval from mark i to mark i + 1
  bool marked = false;           // a mark was taken since start()
  std::array<double, kCategories> totals{};
};

State g_state;

std::unique_ptr<Timer>& device_timer_slot() {
  static std::unique_ptr<Timer> slot;
  return slot;
}

// A scope boundary: the interval since the previous mark belongs to the scope open until now.
void boundary(State& s) {
  if (s.marked) s.owners.push_back(s.open.empty() ? kOutside : s.open.back());
  s.marked = true;
  s.timer->mark();
}

}  // namespace

const char* category_name(Category c) {
  switch (c) {
    case Category::kGemm:
      return "GEMMs (linear, matmul)";
    case Category::kAttention:
      return "attention core";
    case Category::kMoe:
      return "MoE routing + permutation";
    case Category::kNorm:
      return "RMSNorm";
    case Category::kElementwise:
      return "elementwise + activations";
    case Category::kCopy:
      return "copies + casts";
    case Category::kRope:
      return "RoPE";
    case Category::kEmbedding:
      return "embedding";
    case Category::kLoss:
      return "loss (cross-entropy)";
    case Category::kGradNorm:
      return "gradient norm";
    case Category::kOptimizer:
      return "optimizer (AdamW)";
    case Category::kCount:
      break;
  }
  return "?";
}

Timer& host_timer() {
  static SteadyClock clock;
  return clock;
}

void register_device_timer(std::unique_ptr<Timer> timer) {
  device_timer_slot() = std::move(timer);
}

Timer& device_timer() {
  LATTE_CHECK(device_timer_slot() != nullptr)
      << "profiler: no device timer is registered (latte was built without the CUDA backend, or "
         "the CUDA runtime is not initialized)";
  return *device_timer_slot();
}

void start(Timer& timer) {
  State& s = g_state;
  LATTE_CHECK(s.timer == nullptr) << "profiler: start() while already started";
  s.timer = &timer;
}

void stop() {
  State& s = g_state;
  LATTE_CHECK(s.timer != nullptr) << "profiler: stop() without start()";
  LATTE_CHECK(s.open.empty()) << "profiler: stop() inside " << s.open.size()
                              << " open scope(s), the innermost " << category_name(s.open.back());
  Timer* timer = s.timer;
  std::vector<Category> owners = std::move(s.owners);
  s.timer = nullptr;
  s.owners.clear();
  s.marked = false;
  const std::vector<double> intervals = timer->take_intervals();
  LATTE_CHECK(intervals.size() == owners.size())
      << "profiler: the timer returned " << intervals.size() << " intervals for "
      << owners.size() + 1 << " marks";
  for (size_t i = 0; i < owners.size(); ++i)
    if (owners[i] != kOutside) s.totals[static_cast<size_t>(owners[i])] += intervals[i];
}

bool enabled() {
  return g_state.timer != nullptr;
}

void reset() {
  g_state.totals.fill(0.0);
}

double seconds(Category c) {
  return g_state.totals[static_cast<size_t>(c)];
}

void Scope::open(Category c) {
  State& s = g_state;
  boundary(s);
  s.open.push_back(c);
}

void Scope::close() noexcept {
  State& s = g_state;
  boundary(s);
  s.open.pop_back();
}

}  // namespace latte::profiler
