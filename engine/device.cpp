#include "engine/device.h"

#ifdef LATTE_WITH_CUDA
#include "engine/cuda/cuda_tensor_ops.h"
#endif

namespace latte {

#ifdef LATTE_WITH_CUDA
void device_copy(const Tensor& src, const Tensor& dst) {
  cuda::copy(src, dst);
}
void device_fill(const Tensor& dst, double value) {
  cuda::fill(dst, value);
}
bool cuda_available() {
  return cuda::device_count() > 0;
}
bool cuda_built() {
  return true;
}
void synchronize(Device device) {
  if (device == Device::CUDA) cuda::synchronize();
}
#else
void device_copy(const Tensor& src, const Tensor& dst) {
  LATTE_FAIL() << "copy from " << src.describe() << " to " << dst.describe()
               << ": latte was built without the CUDA backend";
}
void device_fill(const Tensor& dst, double) {
  LATTE_FAIL() << "fill " << dst.describe() << ": latte was built without the CUDA backend";
}
bool cuda_available() {
  return false;
}
bool cuda_built() {
  return false;
}
void synchronize(Device) {}
#endif

}  // namespace latte
