#include "models/rope_tables.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/error.h"

namespace latte {

namespace {

void check_rope(const RopeConfig& rope, int64_t dim) {
  LATTE_CHECK(dim > 0 && dim % 2 == 0) << "rope: dim must be even and positive, got " << dim;
  LATTE_CHECK(rope.theta > 1) << "rope: theta must be > 1, got " << rope.theta;
  if (rope.type == RopeType::kDefault) return;
  LATTE_CHECK(rope.factor > 0) << "rope: factor must be positive, got " << rope.factor;
  if (rope.type == RopeType::kDynamic) {
    LATTE_CHECK(dim > 2) << "rope: dynamic scaling needs dim > 2, got " << dim;
  }
  if (rope.type == RopeType::kYarn || rope.type == RopeType::kLlama3) {
    LATTE_CHECK(rope.original_max_position_embeddings > 0)
        << "rope: original_max_position_embeddings must be positive, got "
        << rope.original_max_position_embeddings;
  }
  if (rope.type == RopeType::kYarn) {
    LATTE_CHECK(rope.beta_fast > 0 && rope.beta_slow > 0)
        << "rope: yarn beta_fast and beta_slow must be positive, got " << rope.beta_fast << " and "
        << rope.beta_slow;
  }
  if (rope.type == RopeType::kLlama3) {
    LATTE_CHECK(rope.high_freq_factor > rope.low_freq_factor && rope.low_freq_factor > 0)
        << "rope: llama3 needs 0 < low_freq_factor < high_freq_factor, got " << rope.low_freq_factor
        << " and " << rope.high_freq_factor;
  }
}

// YaRN: interpolate (inv_freq / factor) on low frequencies and keep high ones, with a linear ramp
// between the dimensions whose wavelengths fit beta_fast and beta_slow rotations in L0.
void apply_yarn(const RopeConfig& rope, int64_t dim, std::vector<double>& inv_freq) {
  const double l0 = double(rope.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return dim * std::log(l0 / (2 * std::numbers::pi * rotations)) / (2 * std::log(rope.theta));
  };
  const double low = std::max(std::floor(correction_dim(rope.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(rope.beta_slow)), double(dim - 1));
  if (low == high) high += 0.001;
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    inv_freq[i] = inv_freq[i] / rope.factor * ramp + inv_freq[i] * (1 - ramp);
  }
}

// llama3: divide long wavelengths (> L0 / low_freq_factor) by factor, keep short ones
// (< L0 / high_freq_factor), blend in between.
void apply_llama3(const RopeConfig& rope, std::vector<double>& inv_freq) {
  const double l0 = double(rope.original_max_position_embeddings);
  for (double& f : inv_freq) {
    const double wavelength = 2 * std::numbers::pi / f;
    if (wavelength > l0 / rope.low_freq_factor) {
      f /= rope.factor;
    } else if (wavelength >= l0 / rope.high_freq_factor) {
      const double s =
          (l0 / wavelength - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
      f = (1 - s) * f / rope.factor + s * f;
    }
  }
}

}  // namespace

std::vector<double> rope_inv_freq(const RopeConfig& rope, int64_t dim, int64_t seq_len,
                                  int64_t max_position_embeddings) {
  check_rope(rope, dim);
  double theta = rope.theta;
  if (rope.type == RopeType::kDynamic && seq_len > max_position_embeddings)
    theta *= std::pow(
        rope.factor * double(seq_len) / double(max_position_embeddings) - (rope.factor - 1),
        double(dim) / double(dim - 2));
  std::vector<double> inv_freq(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i)
    inv_freq[i] = std::pow(theta, -2.0 * double(i) / double(dim));
  switch (rope.type) {
    case RopeType::kLinear:
      for (double& f : inv_freq) f /= rope.factor;
      break;
    case RopeType::kYarn:
      apply_yarn(rope, dim, inv_freq);
      break;
    case RopeType::kLlama3:
      apply_llama3(rope, inv_freq);
      break;
    case RopeType::kDefault:
    case RopeType::kDynamic:
      break;
  }
  return inv_freq;
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double rope_attention_factor(const RopeConfig& rope) {
  if (rope.type != RopeType::kYarn) return 1.0;
  if (rope.mscale_all_dim > 0)
    return yarn_mscale(rope.factor, rope.mscale) / yarn_mscale(rope.factor, rope.mscale_all_dim);
  return yarn_mscale(rope.factor, 1.0);
}

double mla_softmax_scale(const RopeConfig& rope, int64_t qk_head_dim) {
  LATTE_CHECK(qk_head_dim > 0) << "attention: qk_head_dim must be positive, got " << qk_head_dim;
  double scale = 1.0 / std::sqrt(double(qk_head_dim));
  if (rope.type == RopeType::kYarn && rope.mscale_all_dim > 0) {
    const double m = yarn_mscale(rope.factor, rope.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

RopeTables make_rope_tables(const RopeConfig& rope, int64_t dim, int64_t length,
                            int64_t max_position_embeddings) {
  LATTE_CHECK(length >= 0) << "rope: table length must be >= 0, got " << length;
  const std::vector<double> inv_freq = rope_inv_freq(rope, dim, length, max_position_embeddings);
  const double factor = rope_attention_factor(rope);
  RopeTables tables{dim, length, std::vector<double>(length * (dim / 2)),
                    std::vector<double>(length * (dim / 2))};
  for (int64_t t = 0; t < length; ++t)
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double angle = double(t) * inv_freq[i];
      tables.cos[t * (dim / 2) + i] = std::cos(angle) * factor;
      tables.sin[t * (dim / 2) + i] = std::sin(angle) * factor;
    }
  return tables;
}

}  // namespace latte
