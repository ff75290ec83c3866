// The kernel tables of a device. engine/ops validate arguments, allocate outputs on the operands'
// device and record autograd; the backend of that device runs the kernels. Each op family has
// one abstract table (engine/backend/<family>_kernels.h) with a CPU implementation
// (engine/backend/cpu_<family>_kernels.cpp, over kernels/cpu) and a CUDA implementation
// (engine/cuda/cuda_<family>_kernels.cpp, over kernels/cuda) that the CUDA runtime registers when
// it initializes. Tables take tensors whose shapes, dtypes and devices the op has already checked.
#pragma once

#include "engine/dtype.h"

namespace latte {

class ElementwiseKernels;
class LinearKernels;
class NnKernels;
class AttentionKernels;
class MoeKernels;
class OptimizerKernels;

struct Backend {
  const ElementwiseKernels* elementwise = nullptr;
  const LinearKernels* linear = nullptr;
  const NnKernels* nn = nullptr;
  const AttentionKernels* attention = nullptr;
  const MoeKernels* moe = nullptr;
  const OptimizerKernels* optimizer = nullptr;
};

// The backend of a device. The CPU's always exists; asking for CUDA's before the CUDA runtime has
// registered it (or in a build without CUDA) throws latte::Error.
const Backend& backend_for(Device device);
void register_cuda_backend(const Backend& backend);

// The CPU tables, one per family (engine/backend/cpu_*_kernels.cpp).
const ElementwiseKernels& cpu_elementwise_kernels();
const LinearKernels& cpu_linear_kernels();
const NnKernels& cpu_nn_kernels();
const AttentionKernels& cpu_attention_kernels();
const MoeKernels& cpu_moe_kernels();
const OptimizerKernels& cpu_optimizer_kernels();

// `table`, or latte::Error naming the family and the device when the device's backend lacks it.
// Each family header wraps this in an accessor: elementwise_kernels(device), ...
void require_kernel_table(const void* table, Device device, const char* family);
template <typename Table>
const Table& checked_table(const Table* table, Device device, const char* family) {
  require_kernel_table(table, device, family);
  return *table;
}

}  // namespace latte
