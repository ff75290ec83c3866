#include "engine/device.h"

#ifdef LATTE_WITH_CUDA
#include "engine/cuda/cuda_runtime.h"
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
void synchronize(Device device) {
  if (device == Device::CUDA) cuda::synchronize();
}
DeviceRange::DeviceRange(Device device, const std::string& name) : open_(device == Device::CUDA) {
  if (open_) cuda::push_range(name.c_str());
}
DeviceRange::~DeviceRange() {
  if (open_) cuda::pop_range();
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
void synchronize(Device) {}
DeviceRange::DeviceRange(Device, const std::string&) : open_(false) {}
DeviceRange::~DeviceRange() = default;
#endif

void require_cuda(const std::string& what) {
#ifdef LATTE_WITH_CUDA
  const char* why = "";
#else
  const char* why = " (latte was built without the CUDA backend)";
#endif
  LATTE_CHECK(cuda_available()) << what << ": no usable CUDA device" << why;
}

}  // namespace latte
