#include "engine/random.h"

#include "engine/dispatch.h"
#include "kernels/cpu/random.h"

namespace latte {

Tensor randn(const Shape& shape, Generator& gen, double mean, double std, DType dtype,
             Device device) {
  Tensor t = Tensor::empty(shape, DType::F64);
  kernels::cpu::fill_normal(t.data<double>(), t.numel(), gen.seed(),
                            gen.take(static_cast<uint64_t>(t.numel())), mean, std);
  return t.to(dtype).to(device);
}

Tensor rand_uniform(const Shape& shape, Generator& gen, double lo, double hi, DType dtype,
                    Device device) {
  Tensor t = Tensor::empty(shape, DType::F64);
  kernels::cpu::fill_uniform(t.data<double>(), t.numel(), gen.seed(),
                             gen.take(static_cast<uint64_t>(t.numel())), lo, hi);
  return t.to(dtype).to(device);
}

}  // namespace latte
