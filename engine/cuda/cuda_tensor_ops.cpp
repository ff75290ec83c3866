#include "engine/cuda/cuda_tensor_ops.h"

#include "engine/dispatch.h"
#include "kernels/cuda/copy.cuh"
#include "kernels/cuda/cuda_check.h"

namespace latte::cuda {

namespace {

// dst = src on the GPU, both on the device, any strides and dtypes.
void device_strided_copy(const Tensor& src, const Tensor& dst) {
  visit_dtype(src.dtype(), [&](auto src_tag) {
    using S = decltype(src_tag);
    visit_dtype(dst.dtype(), [&](auto dst_tag) {
      using D = decltype(dst_tag);
      kernels::cuda::strided_copy<S, D>(src.data<S>(), src.strides().begin(), dst.data<D>(),
                                        dst.strides().begin(), src.shape().begin(), src.dim(),
                                        stream());
    });
  });
}

void memcpy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  LATTE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream()));
}

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  LATTE_CHECK(src.shape() == dst.shape())
      << "copy_: source " << src.describe() << " does not match destination " << dst.describe();
  if (src.numel() == 0) return;
  init();
  const bool same_dtype = src.dtype() == dst.dtype();
  const bool src_gpu = src.device() == Device::CUDA, dst_gpu = dst.device() == Device::CUDA;
  if (src_gpu && dst_gpu) {
    if (same_dtype && src.is_contiguous() && dst.is_contiguous())
      memcpy_async(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToDevice);
    else
      device_strided_copy(src, dst);
    return;
  }
  if (dst_gpu) {
    // Host to device: make a contiguous host copy in the destination dtype if needed, upload it
    // (pageable host memory: the call returns once the data is staged, so the host buffer may go)
    // and scatter it on the device when the destination is a strided view.
    Tensor host = src;
    if (!same_dtype || !src.is_contiguous()) {
      host = Tensor::empty(src.shape(), dst.dtype(), Device::CPU);
      host.copy_(src);
    }
    if (dst.is_contiguous()) {
      memcpy_async(dst.raw_data(), host.raw_data(), host.nbytes(), cudaMemcpyHostToDevice);
      return;
    }
    const Tensor staged = Tensor::empty(src.shape(), dst.dtype(), Device::CUDA);
    memcpy_async(staged.raw_data(), host.raw_data(), host.nbytes(), cudaMemcpyHostToDevice);
    device_strided_copy(staged, dst);
    return;
  }
  // Device to host: gather a strided source on the device, download, convert on the host.
  Tensor dev = src;
  if (!src.is_contiguous()) {
    dev = Tensor::empty(src.shape(), src.dtype(), Device::CUDA);
    device_strided_copy(src, dev);
  }
  if (same_dtype && dst.is_contiguous()) {
    memcpy_async(dst.raw_data(), dev.raw_data(), dev.nbytes(), cudaMemcpyDeviceToHost);
    synchronize();
    return;
  }
  const Tensor host = Tensor::empty(src.shape(), src.dtype(), Device::CPU);
  memcpy_async(host.raw_data(), dev.raw_data(), dev.nbytes(), cudaMemcpyDeviceToHost);
  synchronize();
  Tensor out = dst;  // a handle to the same view
  out.copy_(host);
}

void fill(const Tensor& dst, double value) {
  LATTE_CHECK(dst.is_contiguous())
      << "fill_: needs a contiguous tensor, got a view " << dst.describe();
  init();
  visit_dtype(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    kernels::cuda::fill<T>(dst.data<T>(), dst.numel(), convert_element<T>(value), stream());
  });
}

}  // namespace latte::cuda
