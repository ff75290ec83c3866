#include "models/rope_tables.h"

#include <algorithm>
#include <cmath>

namespace latte {

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

std::vector<double> rope_inv_freq(const RopeConfig& rope, int64_t dim, int64_t seq_len,
                                  int64_t max_position_embeddings) {
  const int64_t half = dim / 2;
  double theta = rope.theta;
  if (rope.type == RopeType::kDynamic && seq_len > max_position_embeddings) {
    const double ratio = static_cast<double>(seq_len) / static_cast<double>(max_position_embeddings);
    theta *= std::pow(rope.factor * ratio - (rope.factor - 1.0),
                      static_cast<double>(dim) / static_cast<double>(dim - 2));
  }
  std::vector<double> inv(half);
  for (int64_t i = 0; i < half; ++i)
    inv[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(dim));

  switch (rope.type) {
    case RopeType::kDefault:
    case RopeType::kDynamic: break;
    case RopeType::kLinear:
      for (double& f : inv) f /= rope.factor;
      break;
    case RopeType::kYarn: {
      const double l0 = static_cast<double>(rope.original_max_position_embeddings);
      auto corr = [&](double r) {
        return static_cast<double>(dim) * std::log(l0 / (2.0 * M_PI * r)) /
               (2.0 * std::log(rope.theta));
      };
      const double low = std::max(std::floor(corr(rope.beta_fast)), 0.0);
      double high = std::min(std::ceil(corr(rope.beta_slow)), static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        inv[i] = inv[i] / rope.factor * ramp + inv[i] * (1.0 - ramp);
      }
      break;
    }
    case RopeType::kLlama3: {
      const double l0 = static_cast<double>(rope.original_max_position_embeddings);
      const double low_wavelen = l0 / rope.low_freq_factor;
      const double high_wavelen = l0 / rope.high_freq_factor;
      for (double& f : inv) {
        const double wavelen = 2.0 * M_PI / f;
        if (wavelen > low_wavelen) {
          f /= rope.factor;
        } else if (wavelen >= high_wavelen) {
          const double s = (l0 / wavelen - rope.low_freq_factor) /
                           (rope.high_freq_factor - rope.low_freq_factor);
          f = (1.0 - s) * f / rope.factor + s * f;
        }
      }
      break;
    }
  }
  return inv;
}

double rope_attention_factor(const RopeConfig& rope) {
  if (rope.type != RopeType::kYarn) return 1.0;
  if (rope.mscale_all_dim > 0)
    return yarn_mscale(rope.factor, rope.mscale) / yarn_mscale(rope.factor, rope.mscale_all_dim);
  return yarn_mscale(rope.factor, 1.0);
}

double mla_softmax_scale(const RopeConfig& rope, int64_t qk_head_dim) {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim));
  if (rope.type == RopeType::kYarn && rope.mscale_all_dim > 0) {
    const double m = yarn_mscale(rope.factor, rope.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

RopeTables make_rope_tables(const RopeConfig& rope, int64_t dim, int64_t length,
                            int64_t max_position_embeddings) {
  RopeTables t;
  t.dim = dim;
  t.length = length;
  const std::vector<double> inv = rope_inv_freq(rope, dim, length, max_position_embeddings);
  const double factor = rope_attention_factor(rope);
  const int64_t half = dim / 2;
  t.cos.resize(length * half);
  t.sin.resize(length * half);
  for (int64_t p = 0; p < length; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p) * inv[i];
      t.cos[p * half + i] = std::cos(angle) * factor;
      t.sin[p * half + i] = std::sin(angle) * factor;
    }
  return t;
}

}  // namespace latte
