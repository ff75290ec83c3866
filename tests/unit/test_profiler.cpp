// The profiler (engine/profiler.h) with fake timers, so nothing depends on real durations: the
// innermost scope owns the time, one mark per scope boundary, the checks on misuse, and each op's
// forward and backward landing in its own category.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/ops/moe_ops.h"
#include "engine/optim/adamw.h"
#include "engine/profiler.h"
#include "engine/random.h"
#include "support/error_text.h"

using namespace latte;
using profiler::Category;

namespace {

// Interval k (counting over the whole life of the timer) lasts 2^k seconds, so every total is a
// sum of distinct powers of two that tells exactly which intervals it holds.
class PowersOfTwoTimer final : public profiler::Timer {
 public:
  void mark() noexcept override { ++marks_; }
  std::vector<double> take_intervals() override {
    std::vector<double> out;
    for (int i = 1; i < marks_; ++i) out.push_back(static_cast<double>(1ll << next_++));
    marks_ = 0;
    return out;
  }
  int marks() const { return marks_; }

 private:
  int marks_ = 0;
  int next_ = 0;
};

// Every interval lasts one second: a category's total counts the intervals it owns.
class TickTimer final : public profiler::Timer {
 public:
  void mark() noexcept override { ++marks_; }
  std::vector<double> take_intervals() override {
    std::vector<double> out(marks_ > 0 ? marks_ - 1 : 0, 1.0);
    marks_ = 0;
    return out;
  }

 private:
  int marks_ = 0;
};

// Returns one interval too many: a timer out of step with the profiler's marks.
class MiscountingTimer final : public profiler::Timer {
 public:
  void mark() noexcept override { ++marks_; }
  std::vector<double> take_intervals() override {
    std::vector<double> out(marks_, 1.0);
    marks_ = 0;
    return out;
  }

 private:
  int marks_ = 0;
};

constexpr int kCategories = static_cast<int>(Category::kCount);

std::vector<double> totals() {
  std::vector<double> t;
  for (int c = 0; c < kCategories; ++c) t.push_back(profiler::seconds(static_cast<Category>(c)));
  return t;
}

// The seconds each category gained while `fn` ran, timed by `timer`.
std::vector<double> profile(profiler::Timer& timer, const std::function<void()>& fn) {
  profiler::reset();
  profiler::start(timer);
  fn();
  profiler::stop();
  return totals();
}

std::string names_with_time(const std::vector<double>& t) {
  std::string s;
  for (int c = 0; c < kCategories; ++c)
    if (t[c] != 0)
      s += std::string(s.empty() ? "" : ", ") + category_name(static_cast<Category>(c));
  return s.empty() ? "none" : s;
}

double at(const std::vector<double>& t, Category c) {
  return t[static_cast<size_t>(c)];
}

}  // namespace

TEST_CASE("the innermost open scope owns the time: an inner scope pauses the outer one") {
  PowersOfTwoTimer timer;
  const std::vector<double> t = profile(timer, [] {
    {
      profiler::Scope gemm(Category::kGemm);  // mark 0
      {
        profiler::Scope copy(Category::kCopy);  // mark 1
      }                                         // mark 2
      {
        profiler::Scope copy(Category::kCopy);  // mark 3
      }                                         // mark 4
    }                                           // mark 5
    {
      profiler::Scope norm(Category::kNorm);  // mark 6: the interval 5–6 is outside every scope
    }                                         // mark 7
  });
  // Intervals 2^0 .. 2^6 between the 8 marks.
  CHECK(at(t, Category::kGemm) == 1 + 4 + 16);
  CHECK(at(t, Category::kCopy) == 2 + 8);
  CHECK(at(t, Category::kNorm) == 64);
  double sum = 0;
  for (double s : t) sum += s;
  CHECK(sum == 127 - 32);  // every interval once, except the one outside the scopes
}

TEST_CASE("a scope takes one mark when it opens and one when it closes, only while started") {
  PowersOfTwoTimer timer;
  {
    profiler::Scope before(Category::kGemm);  // not started: no mark
  }
  CHECK(timer.marks() == 0);
  profiler::reset();
  profiler::start(timer);
  {
    profiler::Scope outer(Category::kMoe);
    CHECK(timer.marks() == 1);
    {
      profiler::Scope inner(Category::kGemm);
      CHECK(timer.marks() == 2);
    }
    CHECK(timer.marks() == 3);
  }
  CHECK(timer.marks() == 4);
  profiler::stop();
  CHECK(timer.marks() == 0);  // taken by stop()
  {
    profiler::Scope after(Category::kGemm);  // stopped again: no mark
  }
  CHECK(timer.marks() == 0);
  CHECK(at(totals(), Category::kMoe) == 1 + 4);
  CHECK(at(totals(), Category::kGemm) == 2);
  profiler::reset();
  CHECK(names_with_time(totals()) == "none");
}

TEST_CASE("totals add up over start/stop sessions until reset") {
  PowersOfTwoTimer timer;
  profiler::reset();
  for (int session = 0; session < 2; ++session) {
    profiler::start(timer);
    { profiler::Scope s(Category::kLoss); }
    profiler::stop();
  }
  CHECK(at(totals(), Category::kLoss) == 1 + 2);
  profiler::reset();
}

TEST_CASE("misuse of the profiler is reported") {
  TickTimer timer;
  CHECK_CONTAINS(test::error_of([] { profiler::stop(); }), "stop() without start()");
  profiler::start(timer);
  CHECK_CONTAINS(test::error_of([&] { profiler::start(timer); }), "already started");
  {
    profiler::Scope open(Category::kRope);
    CHECK_CONTAINS(test::error_of([] { profiler::stop(); }),
                   "inside 1 open scope(s), the innermost "
                   "RoPE");
  }
  profiler::stop();

  MiscountingTimer wrong;
  profiler::start(wrong);
  { profiler::Scope s(Category::kGemm); }
  CHECK_CONTAINS(test::error_of([] { profiler::stop(); }), "2 intervals for 2 marks");
  CHECK(!profiler::enabled());
  profiler::reset();
}

TEST_CASE("device_timer() is the registered one, and names the problem when there is none") {
  if (cuda_available()) return;  // the CUDA runtime has registered its event timer
  CHECK_CONTAINS(test::error_of([] { profiler::device_timer(); }), "no device timer");
  auto fake = std::make_unique<TickTimer>();
  TickTimer* registered = fake.get();
  profiler::register_device_timer(std::move(fake));
  CHECK(&profiler::device_timer() == registered);
  profiler::register_device_timer(nullptr);
  CHECK_CONTAINS(test::error_of([] { profiler::device_timer(); }), "no device timer");
}

namespace {

// An op under test: builds its output from inputs made outside the profiler; the backward pass
// runs from that output with a seed of ones.
struct OpProfileCase {
  std::string name;
  Category category;
  std::function<Tensor()> forward;
  bool backward_does_work = true;  // false: the backward only forwards or drops the gradient
};

Tensor input(const Shape& shape, uint64_t seed, DType dtype = DType::F32) {
  Generator gen(seed);
  Tensor t = randn(shape, gen, 0.0, 1.0, dtype);
  t.set_requires_grad(true);
  return t;
}

std::vector<OpProfileCase> op_profile_cases() {
  using ops::AttentionKernel;
  return {
      {"rms_norm", Category::kNorm,
       [] {
         return ops::rms_norm(input({4, 8}, 1), input({8}, 2), 1e-6);
       }},
      {"linear", Category::kGemm,
       [] {
         return ops::linear(input({4, 8}, 1), input({6, 8}, 2), input({6}, 3));
       }},
      {"matmul", Category::kGemm,
       [] {
         return ops::matmul(input({2, 3, 5}, 1), input({5, 4}, 2));
       }},
      {"naive attention", Category::kAttention,
       [] {
         return ops::attention(input({1, 5, 2, 4}, 1), input({1, 5, 2, 4}, 2),
                               input({1, 5, 2, 4}, 3), 0.5, true, AttentionKernel::kNaive);
       }},
      {"flash attention", Category::kAttention,
       [] {
         return ops::attention(input({1, 5, 2, 4}, 1), input({1, 5, 2, 4}, 2),
                               input({1, 5, 2, 4}, 3), 0.5, true, AttentionKernel::kFlash);
       }},
      {"rope", Category::kRope,
       [] {
         Generator gen(9);
         const Tensor cos = randn({6, 2}, gen), sin = randn({6, 2}, gen);
         return ops::rope(input({1, 5, 2, 4}, 1), cos, sin, 1, false);
       }},
      {"embedding", Category::kEmbedding,
       [] {
         const Tensor ids = Tensor::from_vector(std::vector<int32_t>{3, 0, 3, 1}, {2, 2});
         return ops::embedding(ids, input({5, 4}, 1));
       }},
      {"cross_entropy", Category::kLoss,
       [] {
         const Tensor targets = Tensor::from_vector(std::vector<int32_t>{2, 0, 4}, {3});
         return ops::cross_entropy(input({3, 5}, 1), targets);
       }},
      {"add (broadcast)", Category::kElementwise,
       [] {
         return ops::add(input({4, 8}, 1), input({8}, 2));
       }},
      {"mul", Category::kElementwise,
       [] {
         return ops::mul(input({4, 8}, 1), input({4, 8}, 2));
       }},
      {"scale", Category::kElementwise,
       [] {
         return ops::scale(input({4, 8}, 1), 3.0);
       }},
      {"silu", Category::kElementwise,
       [] {
         return ops::silu(input({4, 8}, 1));
       }},
      {"sigmoid", Category::kElementwise,
       [] {
         return ops::sigmoid(input({4, 8}, 1));
       }},
      {"swiglu", Category::kElementwise,
       [] {
         return ops::swiglu(input({4, 8}, 1), input({4, 8}, 2));
       }},
      {"softmax", Category::kElementwise,
       [] {
         return ops::softmax(input({4, 8}, 1));
       }},
      {"dropout", Category::kElementwise,
       [] {
         Generator gen(5);
         return ops::dropout(input({4, 8}, 1), 0.5, gen);
       }},
      // The backward of sum broadcasts the gradient: a copy.
      {"sum", Category::kElementwise,
       [] {
         return ops::sum(input({4, 8}, 1));
       },
       false},
      {"cast to f64", Category::kCopy,
       [] {
         return input({4, 8}, 1).to(DType::F64);
       }},
      {"contiguous copy of a transpose", Category::kCopy,
       [] {
         return input({4, 8}, 1).transpose(0, 1).contiguous();
       }},
      {"concat", Category::kCopy,
       [] {
         return ops::concat({input({2, 8}, 1), input({3, 8}, 2)}, 0);
       }},
      {"MoE router scores", Category::kMoe,
       [] {
         return ops::moe_router_scores(input({4, 6}, 1), ops::RouterScoring::kSoftmax);
       }},
  };
}

}  // namespace

TEST_CASE("each op's forward and backward count in the op's own category") {
  // The backward pass copies each leaf's first gradient into its .grad (Tensor::clone): copies
  // may show up beside any op.
  for (const OpProfileCase& c : op_profile_cases()) {
    INFO(c.name);
    TickTimer timer;
    Tensor out;
    const std::vector<double> forward = profile(timer, [&] { out = c.forward(); });
    INFO("forward: " << names_with_time(forward));
    CHECK(at(forward, c.category) > 0);
    const Tensor seed = Tensor::ones(out.shape(), out.dtype());
    const std::vector<double> backward = profile(timer, [&] { run_backward(out, seed); });
    INFO("backward: " << names_with_time(backward));
    if (c.backward_does_work) CHECK(at(backward, c.category) > 0);
    for (int k = 0; k < kCategories; ++k) {
      const auto other = static_cast<Category>(k);
      if (other == c.category || other == Category::kCopy) continue;
      CHECK(at(forward, other) == 0);
      CHECK(at(backward, other) == 0);
    }
  }
}

TEST_CASE("RMSNorm forward and backward time only RMSNorm, one interval each, and no GEMM") {
  TickTimer timer;
  const Tensor x = input({4, 8}, 1), w = input({8}, 2);
  Tensor y;
  const std::vector<double> forward = profile(timer, [&] { y = ops::rms_norm(x, w, 1e-6); });
  CHECK(names_with_time(forward) == "RMSNorm");
  CHECK(at(forward, Category::kNorm) == 1);
  const std::vector<double> backward =
      profile(timer, [&] { run_backward(y, Tensor::ones(y.shape())); });
  CHECK(at(backward, Category::kNorm) == 1);
  // The seed's fill; the leaves take their fresh gradients over (no .grad copies).
  CHECK(at(backward, Category::kCopy) == 1);
  CHECK(at(backward, Category::kGemm) == 0);
}

TEST_CASE("the gradient norm and the optimizer step have their own categories") {
  Tensor p = input({3, 4}, 1);
  p.set_grad(Tensor::full({3, 4}, 0.5));
  AdamW optimizer({ParamGroup{{{"p", p}}, 0.1}}, AdamWOptions{});
  TickTimer timer;
  double norm = 0;
  const std::vector<double> t = profile(timer, [&] {
    norm = global_grad_norm({p});
    optimizer.step(1e-3, clip_scale(norm, 1.0));
  });
  CHECK(norm == doctest::Approx(0.5 * std::sqrt(12.0)));
  CHECK(names_with_time(t) == "gradient norm, optimizer (AdamW)");
}
