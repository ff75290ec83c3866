// Picks OpenBLAS's kernels from the CPU's instruction sets. OpenBLAS 0.3.21 (Debian 12) does
// not recognise recent Xeons behind a hypervisor and falls back to its SSE3 "Prescott"
// kernels, 2-3x slower than the AVX-512 ones on the same machine. OpenBLAS reads
// OPENBLAS_CORETYPE only when it is loaded, so when the variable is unset latte sets it and
// re-executes itself once; a value set by the user is left alone.
#pragma once

namespace latte::cli {

// Returns normally (nothing to do, or re-exec failed); otherwise does not return.
void select_blas_kernels(char** argv);

}  // namespace latte::cli
