// The profiler on the GPU: the CUDA runtime registers its event timer, which measures device time
// between marks (never more than the host saw around them) and reuses its events; an op on CUDA
// tensors charges its category; a profiled training run gives every category GPU time.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/cuda/cuda_runtime.h"
#include "engine/cuda/event_timer.h"
#include "engine/dist/communicator.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "engine/random.h"
#include "engine/train/run_config.h"
#include "engine/train/trainer.h"
#include "support/temp_dir.h"

namespace latte::test {

namespace {

double host_seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("the CUDA runtime registers an event timer that is the profiler's device timer") {
  REQUIRE(cuda::device_count() > 0);
  CHECK(dynamic_cast<cuda::EventTimer*>(&profiler::device_timer()) != nullptr);
}

TEST_CASE("the event timer measures GPU time between marks and reuses its events") {
  Generator gen(3);
  const Tensor a = randn({2048, 2048}, gen, 0.0, 1.0, DType::F32, Device::CUDA);
  const Tensor b = randn({2048, 2048}, gen, 0.0, 1.0, DType::F32, Device::CUDA);
  cuda::synchronize();
  cuda::EventTimer timer(cuda::stream());
  CHECK(timer.take_intervals().empty());

  const auto t0 = std::chrono::steady_clock::now();
  timer.mark();
  const Tensor c = ops::matmul(a, b);
  timer.mark();
  timer.mark();
  const std::vector<double> intervals = timer.take_intervals();  // waits for the last mark
  const double host = host_seconds_since(t0);
  REQUIRE(intervals.size() == 2);
  // The events were recorded after t0 and had completed before `host` was read.
  CHECK(intervals[0] > 0);
  CHECK(intervals[0] <= host);
  CHECK(intervals[1] >= 0);
  CHECK(timer.pool_size() == 3);

  for (int i = 0; i < 3; ++i) timer.mark();  // as many marks as before: no new event
  CHECK(timer.take_intervals().size() == 2);
  CHECK(timer.pool_size() == 3);
  for (int i = 0; i < 5; ++i) timer.mark();
  CHECK(timer.take_intervals().size() == 4);
  CHECK(timer.pool_size() == 5);
}

TEST_CASE("a GEMM on CUDA tensors charges the GEMM category with GPU time") {
  Generator gen(4);
  const Tensor a = randn({1024, 512}, gen, 0.0, 1.0, DType::BF16, Device::CUDA);
  const Tensor w = randn({768, 512}, gen, 0.0, 1.0, DType::BF16, Device::CUDA);
  cuda::synchronize();
  profiler::reset();
  const auto t0 = std::chrono::steady_clock::now();
  profiler::start(profiler::device_timer());
  const Tensor y = ops::linear(a, w);
  profiler::stop();
  const double host = host_seconds_since(t0);
  const double gemm = profiler::seconds(profiler::Category::kGemm);
  CHECK(gemm > 0);
  CHECK(gemm <= host);
  for (int c = 0; c < static_cast<int>(profiler::Category::kCount); ++c)
    if (static_cast<profiler::Category>(c) != profiler::Category::kGemm)
      CHECK(profiler::seconds(static_cast<profiler::Category>(c)) == 0);
  profiler::reset();
}

TEST_CASE("a profiled training run on CUDA splits its steps into the categories") {
  const char* env_source = std::getenv("LATTE_SOURCE_DIR");
  const std::string source = env_source && *env_source ? env_source : LATTE_SOURCE_DIR;
  // GPU time from CUDA events, then host time (--profile-host).
  for (const bool host_clock : {false, true}) {
    CAPTURE(host_clock);
    TempDir dir;
    const RunConfig rc = load_run_config(
        source + "/tests/integration/configs/tiny_v3.toml",
        {"train.steps=3", "train.checkpoint_every=0", "eval.every=0", "eval.length_multipliers=[1]",
         "train.device=\"cuda\"", "output.dir=\"" + dir.file("run") + "\""});
    TrainOptions options;
    options.progress = false;
    options.profile = true;
    options.profile_host = host_clock;
    const auto comm = make_single_process_communicator();
    const auto t0 = std::chrono::steady_clock::now();
    const TrainSummary summary = train(rc, options, *comm);
    const double host = host_seconds_since(t0);
    CHECK(summary.steps == 3);
    CHECK(!profiler::enabled());
    // deepseek_v3_small does work of every category (MLA with RoPE, an MoE layer, MTP); steps 2
    // and 3 are profiled.
    double sum = 0;
    for (int k = 0; k < static_cast<int>(profiler::Category::kCount); ++k) {
      const auto c = static_cast<profiler::Category>(k);
      CAPTURE(profiler::category_name(c));
      CHECK(profiler::seconds(c) > 0);
      sum += profiler::seconds(c);
    }
    CHECK(sum <= host);
    profiler::reset();
  }
}

}  // namespace latte::test
