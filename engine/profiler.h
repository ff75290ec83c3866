// A built-in profiler: time accumulated per category of work (GEMMs, the attention core, MoE
// routing and permutation, RMSNorm, elementwise ops and activations, copies and casts, RoPE,
// embedding, the loss, the gradient norm, the optimizer) by scoped timers placed in the ops,
// forward and backward. Off by default; when off a scope costs one branch. Not thread-safe: ops
// run on the calling thread (OpenMP parallelism is inside them).
//
// Nesting: the innermost open scope owns the time. Opening a scope pauses the one around it and
// closing it resumes that one, so no instant is counted twice and the categories add up to the
// time spent inside any scope (a GEMM inside an MoE op counts as GEMM, a cast inside it as copy).
//
// Time comes from a Timer that start() names: every scope boundary takes one mark, and stop()
// turns the intervals between consecutive marks into seconds for the innermost category open
// during each. host_timer() reads the steady clock, which suits the CPU, whose ops finish before
// they return. A device that runs work asynchronously registers its own timer
// (register_device_timer; the CUDA runtime does at init) whose marks are events in the device's
// work queue: a category's time is then the device time between its marks, which also holds the
// gaps in which the device waited for the host inside the scope (launch-bound ops look long).
#pragma once

#include <memory>
#include <vector>

namespace latte::profiler {

enum class Category {
  kGemm,         // linear, matmul, grouped expert GEMMs
  kAttention,    // the attention core (naive or flash)
  kMoe,          // router scores, expert selection, dispatch, gather, combine
  kNorm,         // RMSNorm
  kElementwise,  // add, sub, mul, scale, SiLU, sigmoid, SwiGLU, softmax, dropout, sums
  kCopy,         // copies, dtype casts, device transfers, fills (Tensor::copy_ and fill_)
  kRope,         // rotary embedding
  kEmbedding,    // token embedding lookup
  kLoss,         // cross-entropy
  kGradNorm,     // the global gradient norm (for clipping)
  kOptimizer,    // AdamW
  kCount
};

const char* category_name(Category c);

// A clock the profiler reads at every scope boundary.
class Timer {
 public:
  virtual ~Timer() = default;
  // Takes the current instant (on a device: the point of its work queue after everything issued
  // so far). Never throws: a failure is reported by the next take_intervals().
  virtual void mark() noexcept = 0;
  // The seconds between consecutive marks since the previous call (n marks: n − 1 intervals, in
  // order); forgets those marks. A device timer waits for the device to pass the last mark.
  virtual std::vector<double> take_intervals() = 0;
};

// The steady clock of the host.
Timer& host_timer();

// The timer of the device runtime, registered when it initializes (one per process; a second
// registration replaces the first). device_timer() throws latte::Error when none is registered.
void register_device_timer(std::unique_ptr<Timer> timer);
Timer& device_timer();

// Scopes opened from now on are timed with `timer` (throws when already started).
void start(Timer& timer);
// Stops timing and adds the intervals marked since start() to the totals; waits for the device
// when the timer is a device's. Throws when a scope is still open.
void stop();
bool enabled();
// Clears the totals.
void reset();
// Seconds of `c` accumulated by stop() since the last reset().
double seconds(Category c);

class Scope {
 public:
  explicit Scope(Category c) : active_(enabled()) {
    if (active_) open(c);
  }
  ~Scope() {
    if (active_) close();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  static void open(Category c);
  static void close() noexcept;
  bool active_;
};

}  // namespace latte::profiler
