// RoPE: the rotation kernels (gradients against finite differences for both pair layouts, the
// interleaved and rotate-half layouts agreeing, norm preservation, relative positions, position
// offsets, in-place use) and the SPEC §2 frequency math of every scaling type against values
// computed independently.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "kernels/cpu/rope.h"
#include "models/rope_tables.h"
#include "tests/support/finite_difference.h"

namespace {

using latte::RopeConfig;
using latte::RopeType;
using latte::kernels::cpu::AttentionLayout;
using latte::kernels::cpu::rope_backward;
using latte::kernels::cpu::rope_forward;
using latte::test::max_relative_error;

// A [batch, tokens, heads, width] operand whose head vectors hold `lead` other elements before
// the rope_dim rotated ones, as MLA's [q_nope | q_rope]; 2 unused elements follow each head
// vector and 3 each token.
struct Operand {
  int64_t batch, tokens, heads, lead, rope_dim;

  int64_t head_stride() const { return lead + rope_dim + 2; }
  int64_t token_stride() const { return heads * head_stride() + 3; }
  AttentionLayout layout() const {
    return {tokens * token_stride(), token_stride(), head_stride()};
  }
  int64_t size() const { return batch * tokens * token_stride(); }
  // Offset of rope element d of (b, t, h), relative to the start of the rope part.
  int64_t at(int64_t b, int64_t t, int64_t h, int64_t d) const {
    return b * tokens * token_stride() + t * token_stride() + h * head_stride() + d;
  }
};

struct Table {
  std::vector<double> cos, sin;
};

Table table(const RopeConfig& rope, int64_t rope_dim, int64_t length) {
  const latte::RopeTables t = latte::make_rope_tables(rope, rope_dim, length, 4096);
  return {t.cos, t.sin};
}

RopeConfig yarn_config(double factor, double mscale, double mscale_all_dim) {
  RopeConfig rope;
  rope.type = RopeType::kYarn;
  rope.factor = factor;
  rope.original_max_position_embeddings = 4096;
  rope.mscale = mscale;
  rope.mscale_all_dim = mscale_all_dim;
  return rope;
}

// Applies rope_forward to the rope parts of a buffer laid out as `x`.
std::vector<double> rotate(const std::vector<double>& in, const Operand& x, const Table& t,
                           int64_t position_offset, bool interleave) {
  std::vector<double> out = in;
  rope_forward(in.data() + x.lead, x.layout(), out.data() + x.lead, x.layout(), x.batch, x.tokens,
               x.heads, x.rope_dim, t.cos.data(), t.sin.data(), position_offset, interleave);
  return out;
}

TEST_CASE("rope gradients match central finite differences in double, both layouts") {
  // A yarn table with mscale_all_dim = 0 scales cos and sin by 1.37, so the map is not orthogonal
  // and the backward pass must be its transpose, not its inverse.
  const Operand x{2, 5, 3, 3, 8};
  const Operand y{2, 5, 3, 1, 8};  // a different layout for the output
  const Table t = table(yarn_config(40, 1, 0), x.rope_dim, 12);
  for (bool interleave : {true, false}) {
    CAPTURE(interleave);
    std::vector<double> in = latte::test::random_vector(x.size(), 1);
    const std::vector<double> weight = latte::test::random_vector(y.size(), 2);
    auto loss = [&] {
      std::vector<double> out(y.size(), 0.0);
      rope_forward(in.data() + x.lead, x.layout(), out.data() + y.lead, y.layout(), x.batch,
                   x.tokens, x.heads, x.rope_dim, t.cos.data(), t.sin.data(), 4, interleave);
      double sum = 0;
      for (size_t i = 0; i < out.size(); ++i) sum += out[i] * weight[i];
      return sum;
    };
    const std::vector<double> numeric = latte::test::numeric_gradient(loss, in);
    // dx from dy = weight; elements outside the rope parts must stay untouched (-7).
    std::vector<double> grad(x.size(), -7.0);
    rope_backward(weight.data() + y.lead, y.layout(), grad.data() + x.lead, x.layout(), x.batch,
                  x.tokens, x.heads, x.rope_dim, t.cos.data(), t.sin.data(), 4, interleave);
    std::vector<bool> rotated(x.size());
    std::vector<double> grad_rotated, numeric_rotated;
    for (int64_t b = 0; b < x.batch; ++b)
      for (int64_t tok = 0; tok < x.tokens; ++tok)
        for (int64_t h = 0; h < x.heads; ++h)
          for (int64_t d = 0; d < x.rope_dim; ++d) {
            const int64_t i = x.lead + x.at(b, tok, h, d);
            rotated[i] = true;
            grad_rotated.push_back(grad[i]);
            numeric_rotated.push_back(numeric[i]);
          }
    bool others_untouched = true;
    for (size_t i = 0; i < grad.size(); ++i)
      if (!rotated[i] && grad[i] != -7.0) others_untouched = false;
    CHECK(others_untouched);
    // The loss is linear in x: central differences are exact up to rounding, ~1e-16 * |loss| /
    // eps with eps 1e-6, i.e. below 1e-8 against gradients of order 1.
    CHECK(max_relative_error(grad_rotated, numeric_rotated) < 1e-8);
  }
}

TEST_CASE("interleaved and rotate-half layouts agree when q and k are permuted alike") {
  // Pair i is (x_2i, x_2i+1) interleaved and (x_i, x_i+4) in halves; P maps one to the other.
  const int64_t dim = 8, half = dim / 2;
  const Operand x{1, 6, 2, 0, dim};
  const Table t = table(RopeConfig{}, dim, 6);
  auto permute = [&](const std::vector<double>& v) {
    std::vector<double> out = v;
    for (int64_t tok = 0; tok < x.tokens; ++tok)
      for (int64_t h = 0; h < x.heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          out[x.at(0, tok, h, i)] = v[x.at(0, tok, h, 2 * i)];
          out[x.at(0, tok, h, i + half)] = v[x.at(0, tok, h, 2 * i + 1)];
        }
    return out;
  };
  const std::vector<double> q = latte::test::random_vector(x.size(), 3);
  const std::vector<double> k = latte::test::random_vector(x.size(), 4);
  const std::vector<double> q_inter = rotate(q, x, t, 0, true), k_inter = rotate(k, x, t, 0, true);
  const std::vector<double> q_half = rotate(permute(q), x, t, 0, false);
  const std::vector<double> k_half = rotate(permute(k), x, t, 0, false);
  // Same arithmetic on the same pairs: equal up to a rounding or two.
  CHECK(max_relative_error(q_half, permute(q_inter)) < 1e-15);
  for (int64_t m = 0; m < x.tokens; ++m)
    for (int64_t n = 0; n < x.tokens; ++n) {
      double dot_inter = 0, dot_half = 0;
      for (int64_t d = 0; d < dim; ++d) {
        dot_inter += q_inter[x.at(0, m, 1, d)] * k_inter[x.at(0, n, 1, d)];
        dot_half += q_half[x.at(0, m, 1, d)] * k_half[x.at(0, n, 1, d)];
      }
      CHECK(std::abs(dot_inter - dot_half) < 1e-14);
    }
}

TEST_CASE("rope rotates: norms are kept, and q.k depends only on the distance of positions") {
  const int64_t dim = 16;
  const Operand x{1, 1, 1, 0, dim};
  const Table t = table(RopeConfig{}, dim, 40);
  const std::vector<double> q = latte::test::random_vector(x.size(), 5);
  const std::vector<double> k = latte::test::random_vector(x.size(), 6);
  auto norm = [&](const std::vector<double>& v) {
    double sum = 0;
    for (int64_t d = 0; d < dim; ++d) sum += v[d] * v[d];
    return std::sqrt(sum);
  };
  auto dot = [&](const std::vector<double>& a, const std::vector<double>& b) {
    double sum = 0;
    for (int64_t d = 0; d < dim; ++d) sum += a[d] * b[d];
    return sum;
  };
  for (bool interleave : {true, false}) {
    CAPTURE(interleave);
    for (int64_t position : {0, 1, 7, 33}) {
      CAPTURE(position);
      // 1e-14: a rotation in double changes the norm by a few roundings.
      CHECK(std::abs(norm(rotate(q, x, t, position, interleave)) - norm(q)) < 1e-14);
    }
    // Positions (3, 1) and (25, 23) are both 2 apart: same score. (3, 5) is -2 apart: different.
    const double near = dot(rotate(q, x, t, 3, interleave), rotate(k, x, t, 1, interleave));
    const double far = dot(rotate(q, x, t, 25, interleave), rotate(k, x, t, 23, interleave));
    const double other = dot(rotate(q, x, t, 3, interleave), rotate(k, x, t, 5, interleave));
    CHECK(std::abs(near - far) < 1e-13);
    CHECK(std::abs(near - other) > 1e-3);
  }
  // With yarn's attention factor f folded into cos and sin, norms scale by f.
  const RopeConfig yarn = yarn_config(40, 1, 0);
  const Table scaled = table(yarn, dim, 40);
  CHECK(norm(rotate(q, x, scaled, 9, true)) / norm(q) ==
        doctest::Approx(latte::rope_attention_factor(yarn)).epsilon(1e-14));
}

TEST_CASE("position_offset picks table rows, and rope works in place") {
  const int64_t dim = 6;
  const Operand longer{2, 9, 2, 1, dim}, shorter{2, 4, 2, 1, dim};
  const Table t = table(RopeConfig{}, dim, 9);
  const std::vector<double> source = latte::test::random_vector(longer.size(), 7);
  for (bool interleave : {true, false}) {
    CAPTURE(interleave);
    // Tokens 5..8 of a 9-token sequence rotated from position 0 == the same 4 tokens on their own
    // rotated from position_offset 5.
    std::vector<double> part(shorter.size(), 0.0);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t tok = 0; tok < 4; ++tok)
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t d = 0; d < dim; ++d)
            part[shorter.at(b, tok, h, d) + 1] = source[longer.at(b, tok + 5, h, d) + 1];
    const std::vector<double> whole = rotate(source, longer, t, 0, interleave);
    std::vector<double> in_place = part;
    rope_forward(in_place.data() + 1, shorter.layout(), in_place.data() + 1, shorter.layout(), 2, 4,
                 2, dim, t.cos.data(), t.sin.data(), 5, interleave);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t tok = 0; tok < 4; ++tok)
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t d = 0; d < dim; ++d)
            CHECK(in_place[shorter.at(b, tok, h, d) + 1] == whole[longer.at(b, tok + 5, h, d) + 1]);
  }
}

// Expected inverse frequencies at these indices (dim 64) were computed in Python from the SPEC §2
// formulas: base theta ** (-2 i / dim); linear base / factor; dynamic theta' = theta * (factor *
// L / Lmax - (factor - 1)) ** (dim / (dim - 2)); yarn corr(r) = dim * ln(L0 / (2 pi r)) /
// (2 ln theta), low = max(floor(corr(beta_fast)), 0), high = min(ceil(corr(beta_slow)), dim - 1),
// ramp = clamp((i - low) / (high - low), 0, 1), base / factor * ramp + base * (1 - ramp).
const std::vector<int64_t> kIndices = {0, 1, 7, 10, 11, 16, 22, 23, 31};

void check_inv_freq(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == 32);
  for (size_t n = 0; n < kIndices.size(); ++n) {
    CAPTURE(kIndices[n]);
    // 1e-14 relative: the same double formulas, pow and log of libm in both.
    CHECK(actual[kIndices[n]] == doctest::Approx(expected[n]).epsilon(1e-14));
  }
}

TEST_CASE("rope_inv_freq: default, linear and dynamic scaling") {
  RopeConfig rope;  // default, theta 10000
  const std::vector<double> base = {
      1.0,  0.7498942093324559,    0.1333521432163324,   0.05623413251903491,  0.042169650342858224,
      0.01, 0.0017782794100389228, 0.001333521432163324, 0.0001333521432163324};
  check_inv_freq(latte::rope_inv_freq(rope, 64, 8192, 2048), base);

  rope.type = RopeType::kLinear;  // the advanced_rope variant: linear x2, theta 50000
  rope.factor = 2;
  rope.theta = 50000;
  check_inv_freq(
      latte::rope_inv_freq(rope, 64, 512, 2048),
      {0.5, 0.356555542455966, 0.046888929307487226, 0.01700363907773305, 0.01212548351017314,
       0.00223606797749979, 0.0002940547007109614, 0.00020969366664744715, 1.4023060658543798e-05});

  rope.type = RopeType::kDynamic;  // factor 2, theta 10000, Lmax 2048
  rope.theta = 10000;
  // Below or at Lmax: unchanged.
  check_inv_freq(latte::rope_inv_freq(rope, 64, 2048, 2048), base);
  // L = 4096: theta' = 10000 * 3 ** (64 / 62) = 31082.236667168814.
  check_inv_freq(
      latte::rope_inv_freq(rope, 64, 4096, 2048),
      {1.0, 0.7237840223942559, 0.1040549973470654, 0.03945389803352641, 0.028556101017838568,
       0.005672099864306926, 0.000815450905341001, 0.0005902103363327472, 4.4450714405444134e-05});
}

TEST_CASE("rope_inv_freq: yarn with DeepSeek-V3's parameters") {
  // dim 64, theta 10000, factor 40, L0 4096, beta_fast 32, beta_slow 1: corr(32) = 10.47 and
  // corr(1) = 22.51, so low = 10, high = 23; i <= 10 keeps the base frequency, i >= 23 is base/40.
  const RopeConfig rope = yarn_config(40, 1, 1);
  check_inv_freq(
      latte::rope_inv_freq(rope, 64, 4096, 4096),
      {1.0, 0.7498942093324559, 0.1333521432163324, 0.05623413251903491, 0.03900692656714386,
       0.0055, 0.0001778279410038922, 3.33380358040831e-05, 3.3338035804083097e-06});
}

TEST_CASE("rope_inv_freq: llama3 in all three wavelength bands") {
  // Llama 3.1's parameters: dim 128, theta 500000, factor 8, low 1, high 4, L0 8192. Python, SPEC
  // §2: wavelength 2 pi / base; > 8192 -> base / 8; < 2048 -> base; else s = (8192 / wavelength -
  // 1) / 3 and (1 - s) base / 8 + s base. Indices 0 and 20 are short, 29, 31, 33 in the blend
  // (s = 0.80, 0.42, 0.17), 40 and 63 long.
  RopeConfig rope;
  rope.type = RopeType::kLlama3;
  rope.theta = 500000;
  rope.factor = 8;
  rope.low_freq_factor = 1;
  rope.high_freq_factor = 4;
  rope.original_max_position_embeddings = 8192;
  const std::vector<double> inv = latte::rope_inv_freq(rope, 128, 8192, 8192);
  REQUIRE(inv.size() == 64);
  const std::vector<std::pair<int64_t, double>> expected = {{0, 1.0},
                                                            {20, 0.016560440080994446},
                                                            {29, 0.002166570763503359},
                                                            {31, 0.0008567514129196321},
                                                            {33, 0.00031269375038406517},
                                                            {40, 3.428102195952591e-05},
                                                            {63, 3.068925988914511e-07}};
  for (const auto& [i, value] : expected) {
    CAPTURE(i);
    CHECK(inv[i] == doctest::Approx(value).epsilon(1e-14));  // as in check_inv_freq
  }
}

TEST_CASE("yarn scales: attention factor on cos/sin and MLA softmax scale") {
  // mscale(40, m) = 0.1 m ln 40 + 1; mscale(40, 1) = 1.3688879454113936 (Python).
  // DeepSeek-V3 (mscale = mscale_all_dim = 1): factor 1 on cos/sin, the whole correction in the
  // softmax scale: 192^-0.5 * 1.3688879454113936^2 = 0.1352337788608801.
  const RopeConfig deepseek = yarn_config(40, 1, 1);
  CHECK(latte::rope_attention_factor(deepseek) == 1.0);
  CHECK(latte::mla_softmax_scale(deepseek, 192) ==
        doctest::Approx(0.1352337788608801).epsilon(1e-14));
  // mscale_all_dim = 0: mscale(40, 1) on cos/sin and a plain softmax scale.
  const RopeConfig no_all_dim = yarn_config(40, 1, 0);
  CHECK(latte::rope_attention_factor(no_all_dim) ==
        doctest::Approx(1.3688879454113936).epsilon(1e-14));
  CHECK(latte::mla_softmax_scale(no_all_dim, 192) == doctest::Approx(1 / std::sqrt(192.0)));
  // The ratio mscale(40, 0.8) / mscale(40, 0.5) = 1.0934331941177564.
  CHECK(latte::rope_attention_factor(yarn_config(40, 0.8, 0.5)) ==
        doctest::Approx(1.0934331941177564).epsilon(1e-14));
  // Other types: factor 1 and qk_head_dim^-0.5 even with mscale_all_dim set.
  RopeConfig linear = yarn_config(40, 1, 1);
  linear.type = RopeType::kLinear;
  CHECK(latte::rope_attention_factor(linear) == 1.0);
  CHECK(latte::mla_softmax_scale(linear, 64) == 0.125);
  // A factor <= 1 makes mscale 1.
  CHECK(latte::yarn_mscale(1.0, 5.0) == 1.0);
}

TEST_CASE("make_rope_tables: cos and sin of position times frequency, attention factor folded in") {
  const RopeConfig rope = yarn_config(40, 1, 0);
  const latte::RopeTables t = latte::make_rope_tables(rope, 8, 50, 4096);
  CHECK(t.dim == 8);
  CHECK(t.length == 50);
  REQUIRE(t.cos.size() == 50 * 4);
  REQUIRE(t.sin.size() == 50 * 4);
  const std::vector<double> inv = latte::rope_inv_freq(rope, 8, 50, 4096);
  const double factor = latte::rope_attention_factor(rope);
  for (int64_t pos : {0, 1, 17, 49})
    for (int64_t i = 0; i < 4; ++i) {
      CAPTURE(pos);
      CAPTURE(i);
      CHECK(t.cos[pos * 4 + i] == doctest::Approx(std::cos(double(pos) * inv[i]) * factor));
      CHECK(t.sin[pos * 4 + i] == doctest::Approx(std::sin(double(pos) * inv[i]) * factor));
    }
}

TEST_CASE("rope frequency math rejects bad dims and parameters with the values") {
  RopeConfig rope;
  CHECK_THROWS_WITH_AS(latte::rope_inv_freq(rope, 7, 16, 16),
                       doctest::Contains("rope: dim must be even and positive, got 7"),
                       latte::Error);
  rope.type = RopeType::kLlama3;
  rope.low_freq_factor = 4;
  rope.high_freq_factor = 4;
  CHECK_THROWS_WITH_AS(latte::make_rope_tables(rope, 8, 16, 16),
                       doctest::Contains("low_freq_factor < high_freq_factor, got 4 and 4"),
                       latte::Error);
}

}  // namespace
