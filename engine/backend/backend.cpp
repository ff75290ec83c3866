#include "engine/backend/backend.h"

#include "engine/error.h"

namespace latte {

namespace {

Backend& cuda_slot() {
  static Backend backend;
  return backend;
}

bool cuda_registered = false;

}  // namespace

const Backend& backend_for(Device device) {
  if (device == Device::CPU) {
    static const Backend cpu = [] {
      Backend b;
      b.elementwise = &cpu_elementwise_kernels();
      b.linear = &cpu_linear_kernels();
      b.nn = &cpu_nn_kernels();
      b.optimizer = &cpu_optimizer_kernels();
      b.moe = &cpu_moe_kernels();
      b.attention = &cpu_attention_kernels();
      return b;
    }();
    return cpu;
  }
  LATTE_CHECK(cuda_registered)
      << "no kernels for device " << device_name(device)
      << ": the CUDA runtime is not initialized (or latte was built without it)";
  return cuda_slot();
}

void register_cuda_backend(const Backend& backend) {
  cuda_slot() = backend;
  cuda_registered = true;
}

void require_kernel_table(const void* table, Device device, const char* family) {
  LATTE_CHECK(table != nullptr) << "the " << device_name(device) << " backend has no " << family
                                << " kernels";
}

}  // namespace latte
