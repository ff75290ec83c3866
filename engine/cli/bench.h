// `latte bench NAME`: benchmarks (never tests) that print throughput next to a baseline
// measured in the same run. Each benchmark lives in its own bench_*.cpp and is listed in
// cmd_bench.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace latte::cli {

struct BenchOptions {
  std::string device = "cpu";
  int repeats = 5;     // timed repetitions (best and median reported)
  bool quick = false;  // smaller sizes, for smoke runs
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

}  // namespace latte::cli
