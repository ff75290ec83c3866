// Element types and devices of tensors, their sizes and names, and the C++ type of each.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/cpu/bf16.h"

namespace latte {

enum class DType : uint8_t { F32, F64, BF16, I32, I64 };
enum class Device : uint8_t { CPU, CUDA };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
    case DType::I64:
      return 8;
  }
  return 0;
}

// Names as in the safetensors format ("F32", "BF16", ...).
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::BF16:
      return "BF16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
  }
  return "?";
}

inline bool is_floating(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::BF16;
}

// The dtype master weights of `compute` activations keep (mixed precision): the next wider float
// (BF16 -> F32, F32 -> F64); `compute` itself when there is none.
inline DType master_dtype(DType compute) {
  return compute == DType::BF16 ? DType::F32 : compute == DType::F32 ? DType::F64 : compute;
}

inline const char* device_name(Device d) {
  return d == Device::CPU ? "cpu" : "cuda";
}

// Maps C++ element types to DType tags.
template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::BF16;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::I64;
};

}  // namespace latte
