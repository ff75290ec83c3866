// Dtype dispatch: calls a generic lambda with a value of the C++ element type of a DType, so
// ops write their body once: `visit_float(x.dtype(), "rms_norm", [&](auto tag) { using T =
// decltype(tag); ... });`
#pragma once

#include <cstdint>

#include "engine/dtype.h"
#include "engine/error.h"

namespace latte {

// F32 and F64: the types CPU arithmetic runs in.
template <typename F>
decltype(auto) visit_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    default:
      break;
  }
  LATTE_FAIL() << op << ": expected a f32 or f64 tensor, got " << dtype_name(dtype);
}

// F32 and BF16: the types the CUDA kernels run in (bf16 with fp32 arithmetic inside).
template <typename F>
decltype(auto) visit_gpu_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(float{});
    case DType::BF16:
      return f(bf16{});
    default:
      break;
  }
  LATTE_FAIL() << op << ": expected a f32 or bf16 CUDA tensor, got " << dtype_name(dtype);
}

// Calls f(N{}, W{}) for a narrow dtype and a wide one that is the same or its master dtype
// (master_dtype: mixed precision's weights and their gradients against the activations):
// CPU, f32 or f64 with itself or f32 under f64.
template <typename F>
void visit_float_pair(DType narrow, DType wide, const char* op, F&& f) {
  if (narrow == DType::F32 && wide == DType::F64) return f(float{}, double{});
  LATTE_CHECK(narrow == wide) << op << ": " << dtype_name(narrow) << " under " << dtype_name(wide)
                              << " (expected one dtype, or f32 under f64)";
  visit_float(wide, op, [&](auto t) { f(t, t); });
}
// CUDA, f32 or bf16 with itself or bf16 under f32.
template <typename F>
void visit_gpu_float_pair(DType narrow, DType wide, const char* op, F&& f) {
  if (narrow == DType::BF16 && wide == DType::F32) return f(bf16{}, float{});
  LATTE_CHECK(narrow == wide) << op << ": " << dtype_name(narrow) << " under " << dtype_name(wide)
                              << " (expected one dtype, or bf16 under f32)";
  visit_gpu_float(wide, op, [&](auto t) { f(t, t); });
}

// Every dtype.
template <typename F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    case DType::BF16:
      return f(bf16{});
    case DType::I32:
      return f(int32_t{});
    case DType::I64:
      return f(int64_t{});
  }
  LATTE_FAIL() << "unknown dtype";
}

}  // namespace latte
