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
