// The engine's CUDA runtime: the caching allocator (bucket sizes, reuse, byte counts, release),
// tensor copies across devices, strides and dtypes, fill, and the kernels' refusal of
// unsupported attention head dims.
#include <doctest/doctest.h>

#include <numeric>

#include "cuda/cuda_test_support.h"
#include "engine/allocator.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/tensor.h"
#include "kernels/cuda/flash_attention.cuh"

namespace latte::test {

TEST_CASE("cuda caching allocator buckets, reuses freed blocks and counts bytes") {
  using cuda::CachingAllocator;
  CHECK(CachingAllocator::bucket_size(1) == 512);
  CHECK(CachingAllocator::bucket_size(512) == 512);
  CHECK(CachingAllocator::bucket_size(513) == 1024);
  CHECK(CachingAllocator::bucket_size(size_t(1) << 20) == size_t(1) << 20);
  CHECK(CachingAllocator::bucket_size((size_t(1) << 20) + 1) == size_t(2) << 20);
  CHECK(CachingAllocator::bucket_size((size_t(5) << 20) + 3) == size_t(6) << 20);

  REQUIRE(cuda::device_count() > 0);
  Allocator& a = allocator_for(Device::CUDA);
  auto* caching = dynamic_cast<CachingAllocator*>(&a);
  REQUIRE(caching != nullptr);
  const size_t before = a.current_bytes();
  a.reset_peak();
  void* p = a.allocate(1000);
  CHECK(a.current_bytes() == before + 1000);
  a.deallocate(p, 1000);
  CHECK(a.current_bytes() == before);
  CHECK(caching->cached_bytes() >= 1024);
  void* q = a.allocate(900);  // the same 1024-byte bucket: the cached block comes back
  CHECK(q == p);
  void* r = a.allocate(3000);
  CHECK(a.peak_bytes() == before + 3900);
  a.deallocate(q, 900);
  a.deallocate(r, 3000);
  a.release_cached();
  CHECK(caching->cached_bytes() == 0);
}

TEST_CASE("cuda tensor copies round-trip across devices, strides and dtypes") {
  std::vector<float> values(3 * 5);
  std::iota(values.begin(), values.end(), -7.f);
  for (float& v : values) v *= 0.37f;
  const Tensor host = Tensor::from_vector(values, Shape{3, 5});

  // Contiguous, same dtype, both ways.
  Tensor dev = Tensor::empty(Shape{3, 5}, DType::F32, Device::CUDA);
  dev.copy_(host);
  CHECK(dev.to_vector<float>() == values);

  // Host transposed view -> device (staged), device -> host transposed view.
  Tensor dev_t = Tensor::empty(Shape{5, 3}, DType::F32, Device::CUDA);
  dev_t.copy_(host.transpose(0, 1));
  Tensor back = Tensor::zeros(Shape{3, 5});
  Tensor back_t = back.transpose(0, 1);
  back_t.copy_(dev_t);
  CHECK(back.to_vector<float>() == values);

  // Device strided view -> device with conversion to bf16, then to f64 on the host.
  Tensor dev_bf16 = Tensor::empty(Shape{5, 3}, DType::BF16, Device::CUDA);
  dev_bf16.copy_(dev.transpose(0, 1));
  Tensor host_f64 = Tensor::empty(Shape{5, 3}, DType::F64);
  host_f64.copy_(dev_bf16);
  const std::vector<double> got = host_f64.to_vector<double>();
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 3; ++j)
      CHECK(got[i * 3 + j] == bf16_to_float(float_to_bf16(values[j * 5 + i])));

  // Integers through a device view.
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{4, -2, 9, 1 << 30}, Shape{2, 2});
  Tensor dev_ids = Tensor::empty(Shape{2, 2}, DType::I32, Device::CUDA);
  dev_ids.copy_(ids);
  CHECK(dev_ids.to_vector<int64_t>() == std::vector<int64_t>{4, -2, 9, 1 << 30});
}

TEST_CASE("cuda fill writes every element in the tensor's dtype") {
  Tensor f = Tensor::full(Shape{1000, 3}, 2.5, DType::F32, Device::CUDA);
  CHECK(f.to_vector<float>() == std::vector<float>(3000, 2.5f));
  Tensor b = Tensor::full(Shape{7}, 1.0 / 3.0, DType::BF16, Device::CUDA);
  CHECK(b.to_vector<float>() == std::vector<float>(7, bf16_to_float(float_to_bf16(1.f / 3.f))));
  Tensor i = Tensor::full(Shape{5}, -3.0, DType::I64, Device::CUDA);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>(5, -3));
  CHECK_THROWS_AS(Tensor::zeros(Shape{4, 4}, DType::F32, Device::CUDA).transpose(0, 1).fill_(1.0),
                  Error);
}

TEST_CASE("cuda flash attention refuses head dims it has no tiles for") {
  kernels::cpu::AttentionProblem p;
  p.batch = 1, p.q_heads = 1, p.kv_heads = 1, p.q_len = 4, p.kv_len = 4;
  p.qk_dim = 320, p.v_dim = 64;
  p.q = kernels::cpu::packed_attention_layout(4, 1, 320);
  p.k = p.q;
  p.v = p.o = kernels::cpu::packed_attention_layout(4, 1, 64);
  DeviceBuffer<float> buffer(4 * 320), lse(4);
  CHECK_THROWS_WITH_AS(
      kernels::cuda::flash_attention_forward<float>(p, buffer.get(), buffer.get(), buffer.get(),
                                                    buffer.get(), lse.get(), cuda::stream()),
      doctest::Contains("exceed the supported 256"), Error);
}

}  // namespace latte::test
