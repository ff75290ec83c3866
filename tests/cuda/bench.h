// Benchmarks of the CUDA kernels, run by `latte_cuda_tests --bench` (tools/gpu_check.sh):
// FlashAttention forward and forward+backward (bf16, causal, B=4, H=16, T in {1024, 4096, 8192},
// head dims (64,64), (128,128), (192,128)) in TFLOP/s beside a cuBLAS bf16 GEMM measured in the
// same run as the machine's practical peak, and one MoE layer's routing and permutation time
// against its expert GEMMs. Prints a table and one "BENCH key=value ..." line per measurement.
#pragma once

namespace latte::test {

// Returns the process exit code (0 on success).
int run_benchmarks();

}  // namespace latte::test
