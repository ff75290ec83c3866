// `latte bench NAME`: benchmarks (never tests) that print throughput next to a baseline
// measured in the same run. Each benchmark lives in its own bench_*.cpp and is listed in
// cmd_bench.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace latte::cli {

struct BenchOptions {
  std::string device = "cpu";
  int repeats = 5;            // timed repetitions (best and median reported)
  bool quick = false;         // smaller sizes, for smoke runs
  bool profile = false;       // train: print each run's step time split (latte train --profile)
  bool profile_host = false;  // train: the same on the host clock (latte train --profile-host)
  // The GPU's dense bf16 peak for MFU; the default is the H100 / H200 SXM datasheet figure.
  double peak_tflops = 989.4;
};

struct Benchmark {
  std::string name;
  std::string description;
  std::function<void(const BenchOptions&)> run;
};

const std::vector<Benchmark>& benchmarks();

struct Timing {
  double best_s = 0;
  double median_s = 0;
};

// Runs fn once to warm up, then `repeats` times; returns the best and median wall time.
Timing time_it(const std::function<void()>& fn, int repeats);

// time_it for work that `device` runs asynchronously (CUDA): the clock starts after the device's
// queue has drained and stops after it has drained again, and each of the `repeats` timings is
// the mean of as many back-to-back calls as fill kDeviceBatchSeconds (at most
// kMaxDeviceBatchCalls), so launch latency and the final wait do not dominate short calls. One
// untimed call warms up (allocator cache, cuBLAS heuristics) and one more sizes the batches.
inline constexpr double kDeviceBatchSeconds = 0.05;
inline constexpr int kMaxDeviceBatchCalls = 100;
Timing time_on_device(const std::function<void()>& fn, int repeats, Device device);

// The device --device names for benchmark `bench` (cpu or cuda); throws latte::Error for other
// names and when CUDA is asked for but not usable.
Device bench_device(const std::string& bench, const BenchOptions& options);

}  // namespace latte::cli
