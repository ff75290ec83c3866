// Entry point of latte_cuda_tests. Without a CUDA device it prints one line and exits with 77,
// which ctest reports as skipped. `latte_cuda_tests --bench` runs the benchmarks (bench.h)
// instead of the tests; any other arguments go to doctest.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>

#include "cuda/bench.h"
#include "engine/cuda/cuda_runtime.h"

int main(int argc, char** argv) {
  if (latte::cuda::device_count() == 0) {
    std::printf("no CUDA device: skipping the cuda tests\n");
    return 77;
  }
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) return latte::test::run_benchmarks();
  doctest::Context context(argc, argv);
  return context.run();
}
