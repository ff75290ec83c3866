// bf16: the upper 16 bits of an IEEE float. A storage type only: arithmetic happens in float,
// conversion back rounds to nearest even (NaN stays NaN).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace latte {

struct bf16 {
  uint16_t bits = 0;
};

inline float bf16_to_float(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return bf16{0x7fc0};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

// Converts between element types, routing bf16 through float.
template <typename Dst, typename Src>
inline Dst convert_element(Src v) {
  if constexpr (std::is_same_v<Src, bf16> && std::is_same_v<Dst, bf16>) {
    return v;
  } else if constexpr (std::is_same_v<Src, bf16>) {
    return static_cast<Dst>(bf16_to_float(v));
  } else if constexpr (std::is_same_v<Dst, bf16>) {
    return float_to_bf16(static_cast<float>(v));
  } else {
    return static_cast<Dst>(v);
  }
}

}  // namespace latte
