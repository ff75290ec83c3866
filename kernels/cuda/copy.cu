#include "kernels/cuda/copy.cuh"

#include <cstring>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/elementwise_map.cuh"
#include "kernels/cuda/merged_walk.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;

// Element conversion on the device: bf16 goes through float, everything else is a cast.
template <typename Dst, typename Src>
__device__ __forceinline__ Dst convert(Src v) {
  if constexpr (std::is_same_v<Src, Dst>) {
    return v;
  } else if constexpr (std::is_same_v<Src, __nv_bfloat16>) {
    return static_cast<Dst>(__bfloat162float(v));
  } else if constexpr (std::is_same_v<Dst, __nv_bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else {
    return static_cast<Dst>(v);
  }
}

// The strided walk in groups of W elements, its index arithmetic paid once per group. W = 1
// converts element by element; W > 1 (same dtype) moves each group as one 16-byte access each
// way, when every group is a 16-byte aligned contiguous run in both operands (groups_contiguous:
// narrowed, broadcast or windowed rows, such as MLA's key halves and their gradients).
template <typename Src, typename Dst, int W>
__global__ void strided_copy_kernel(const Src* __restrict__ src, Dst* __restrict__ dst,
                                    const MergedDims g, int64_t groups) {
  static_assert(W == 1 || std::is_same_v<Src, Dst>, "groups move without conversion");
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < groups;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t s, d;
    merged_offsets(g, idx * W, s, d);
    if constexpr (W == 1)
      dst[d] = convert<Dst>(src[s]);
    else
      store_vec<W>(dst + d, load_vec<W>(src + s));
  }
}

// Whether every W-element group of the walk is a 16-byte aligned contiguous run in both
// operands: unit inner strides, an inner size and outer strides that are multiples of W, and
// aligned starts.
template <typename T>
bool groups_contiguous(const MergedDims& g, const void* src, const void* dst) {
  constexpr int W = kPackWidth<T>;
  const int inner = g.rank - 1;
  if (g.a_stride[inner] != 1 || g.b_stride[inner] != 1 || g.shape[inner] % W != 0) return false;
  for (int d = 0; d < inner; ++d)
    if (g.a_stride[d] % W != 0 || g.b_stride[d] % W != 0) return false;
  return vector_aligned(src) && vector_aligned(dst);
}

// The dense case (both operands row-major over the same shape) as an elementwise map: element i
// to element i, no index arithmetic; what dtype casts of whole tensors (mixed-precision weights)
// take.
template <typename Src, typename Dst>
struct Convert {
  __device__ void operator()(const Src* x, Dst* y) const { y[0] = convert<Dst>(x[0]); }
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    fill_kernel(T* __restrict__ dst, int64_t n, bool vectorized, T value) {
  constexpr int N = kGroupSize<T>;
  Vec<T, N> group;
  for (T& v : group.v) v = value;
  for_each_group<N>(
      n, vectorized, [&](int64_t i) { store_vec<N>(dst + i, group); },
      [&](int64_t i) { dst[i] = value; });
}

}  // namespace

template <typename Src, typename Dst>
void strided_copy(const Src* src, const int64_t* src_strides, Dst* dst, const int64_t* dst_strides,
                  const int64_t* shape, int rank, cudaStream_t stream) {
  LATTE_CHECK(rank >= 0 && rank <= kMaxCopyRank)
      << "cuda strided_copy: rank " << rank << " exceeds " << kMaxCopyRank;
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= shape[d];
  if (n == 0) return;
  const MergedDims g = merge_dims(shape, rank, src_strides, dst_strides);
  if (g.dense()) {
    const Operands<DeviceType<Src>, 1, DeviceType<Dst>, 1> p{{device_ptr(src)}, {device_ptr(dst)}};
    const MapLaunch l = plan_map(n, p);
    map_kernel<<<l.blocks, kMapThreads, 0, stream>>>(n, l.vectorized, p,
                                                     Convert<DeviceType<Src>, DeviceType<Dst>>{});
  } else {
    using S = DeviceType<Src>;
    using D = DeviceType<Dst>;
    const auto launch = [&](auto kernel, int64_t groups) {
      kernel<<<grid_for(groups, kThreads), kThreads, 0, stream>>>(device_ptr(src), device_ptr(dst),
                                                                  g, groups);
    };
    constexpr int W = kPackWidth<Src>;
    if constexpr (std::is_same_v<Src, Dst>) {
      if (groups_contiguous<Src>(g, src, dst))
        launch(strided_copy_kernel<S, D, W>, n / W);
      else
        launch(strided_copy_kernel<S, D, 1>, n);
    } else {
      launch(strided_copy_kernel<S, D, 1>, n);
    }
  }
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void fill(T* dst, int64_t n, T value, cudaStream_t stream) {
  if (n == 0) return;
  DeviceType<T> v;
  static_assert(sizeof(v) == sizeof(value));
  std::memcpy(static_cast<void*>(&v), &value, sizeof(v));
  const bool vectorized = vector_aligned(dst);
  fill_kernel<<<grid_for_groups(n, kGroupSize<T>, vectorized, kThreads), kThreads, 0, stream>>>(
      device_ptr(dst), n, vectorized, v);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_COPY(S)                                                                            \
  template void strided_copy<S, float>(const S*, const int64_t*, float*, const int64_t*,         \
                                       const int64_t*, int, cudaStream_t);                       \
  template void strided_copy<S, double>(const S*, const int64_t*, double*, const int64_t*,       \
                                        const int64_t*, int, cudaStream_t);                      \
  template void strided_copy<S, latte::bf16>(const S*, const int64_t*, latte::bf16*,             \
                                             const int64_t*, const int64_t*, int, cudaStream_t); \
  template void strided_copy<S, int32_t>(const S*, const int64_t*, int32_t*, const int64_t*,     \
                                         const int64_t*, int, cudaStream_t);                     \
  template void strided_copy<S, int64_t>(const S*, const int64_t*, int64_t*, const int64_t*,     \
                                         const int64_t*, int, cudaStream_t);                     \
  template void fill<S>(S*, int64_t, S, cudaStream_t);
LATTE_COPY(float)
LATTE_COPY(double)
LATTE_COPY(latte::bf16)
LATTE_COPY(int32_t)
LATTE_COPY(int64_t)
#undef LATTE_COPY

}  // namespace latte::kernels::cuda
