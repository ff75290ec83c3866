// Environment the BLAS and OpenMP runtimes read once, when they are loaded, set before latte
// does any work. latte sets what the user left unset and re-executes itself once:
// - OPENBLAS_CORETYPE: OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons behind a
//   hypervisor and falls back to its SSE3 "Prescott" kernels, 2-3x slower than the AVX-512
//   ones on the same machine; the kernels are chosen from the CPU's instruction sets instead.
// - GOMP_SPINCOUNT: idle OpenMP workers spin 300k iterations by default; on a machine whose
//   cores are shared (tests run in parallel, other jobs) spinning workers starve the ones doing
//   work and a training step was measured 30x slower. A short spin keeps most of the benefit.
#pragma once

namespace latte::cli {

// Returns normally when nothing needed setting (or re-exec failed); otherwise does not return.
void configure_runtime_environment(char** argv);

}  // namespace latte::cli
