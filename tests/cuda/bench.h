// The kernel-level benchmarks of `latte_cuda_tests --bench` (tools/gpu_check.sh): a cuBLAS bf16
// 8192^3 GEMM, the practical tensor-core peak of the GPU that the op-level benchmarks of
// `latte bench attention moe --device cuda` are read against ("BENCH name=gemm_bf16_8192 ms=
// tflops="), and the sweep of the flash kernels' tile variants against their defaults
// ("BENCH name=flash_tiles ...", one line per variant and shape).
#pragma once

namespace latte::test {

// Returns the process exit code (0 on success).
int run_benchmarks();

}  // namespace latte::test
