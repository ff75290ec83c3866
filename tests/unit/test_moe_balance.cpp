// MoE balancing kernels: the sequence-wise and Switch losses on hand-computed examples and their
// gradients against finite differences, the aux-loss-free bias update, load counting and
// statistics, and independence of the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/moe_balance.h"
#include "support/finite_difference.h"
#include "support/random_expert_ids.h"

namespace {

namespace k = latte::kernels::cpu;
using latte::test::random_expert_ids;

// Four tokens, E = 3, K = 2. Rows 0 and 1 sum to 1 (softmax-like); rows 2 and 3 do not
// (sigmoid-like), so the per-token normalization p = s / Σ_j s matters:
//   t0: s = (.6, .3, .1)  Z = 1    p = (.6, .3, .1)   ids {0, 1}
//   t1: s = (.2, .5, .3)  Z = 1    p = (.2, .5, .3)   ids {1, 2}
//   t2: s = (.8, .4, .8)  Z = 2    p = (.4, .2, .4)   ids {0, 2}
//   t3: s = (.1, .1, .3)  Z = .5   p = (.2, .2, .6)   ids {2, 0}
const std::vector<double> kScores = {.6, .3, .1, .2, .5, .3, .8, .4, .8, .1, .1, .3};
const std::vector<int32_t> kIds = {0, 1, 1, 2, 0, 2, 2, 0};

}  // namespace

TEST_CASE("switch_aux_loss_forward on a hand-computed example") {
  // counts (3, 2, 3) of N·K = 8 -> frac = (3/8, 2/8, 3/8);
  // mean_prob = ((.6+.2+.4+.2)/4, (.3+.5+.2+.2)/4, (.1+.3+.4+.6)/4) = (.35, .3, .35);
  // L = α·E·Σ frac·mean_prob = α·3·(3/8·.35 + 2/8·.3 + 3/8·.35) = α·3·.3375 = α·1.0125.
  const double loss = k::switch_aux_loss_forward(kScores.data(), kIds.data(), 4, 3, 2, 0.01);
  // 1e-14: a handful of roundings of values near 1.
  CHECK(loss == doctest::Approx(0.01 * 1.0125).epsilon(1e-14));
  const float loss_f = k::switch_aux_loss_forward(
      std::vector<float>(kScores.begin(), kScores.end()).data(), kIds.data(), 4, 3, 2, 0.01f);
  CHECK(loss_f == doctest::Approx(0.01 * 1.0125).epsilon(1e-6));  // float inputs: ~1e-7 each
}

TEST_CASE("seq_aux_loss_forward on a hand-computed example (two sequences of two tokens)") {
  // f_i = E/(K·T)·count_i = 3/4·count_i, P_i = mean over the sequence of p_i, L_b = α·Σ f_i·P_i.
  // sequence 0 (t0, t1): counts (1, 2, 1) -> f = (.75, 1.5, .75); P = (.4, .4, .2);
  //   Σ f·P = .3 + .6 + .15 = 1.05.
  // sequence 1 (t2, t3): counts (2, 0, 2) -> f = (1.5, 0, 1.5); P = (.3, .2, .5);
  //   Σ f·P = .45 + 0 + .75 = 1.2.
  // L = α·(1.05 + 1.2)/2 = α·1.125.
  const double loss = k::seq_aux_loss_forward(kScores.data(), kIds.data(), 2, 2, 3, 2, 0.001);
  CHECK(loss == doctest::Approx(0.001 * 1.125).epsilon(1e-14));  // a handful of roundings
  // One sequence holding all four tokens: f = 3/8·(3, 2, 3), P = (.35, .3, .35):
  // α·(3/8)·(3·.35 + 2·.3 + 3·.35) = α·1.0125, the Switch value above (they coincide for B = 1).
  CHECK(k::seq_aux_loss_forward(kScores.data(), kIds.data(), 1, 4, 3, 2, 0.001) ==
        doctest::Approx(0.001 * 1.0125).epsilon(1e-14));
}

TEST_CASE("perfectly balanced routing with uniform scores gives exactly alpha") {
  // Uniform p = 1/E and counts K·T/E per expert give f_i = 1, P_i = 1/E: Σ f·P = 1, and likewise
  // E·Σ (1/E)·(1/E) = 1 for the Switch loss. E = 4, K = 2, T = 4: each expert twice per sequence.
  const std::vector<double> uniform(2 * 4 * 4, 0.7);
  const std::vector<int32_t> ids = {0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0, 1, 0, 3, 2};
  CHECK(k::seq_aux_loss_forward(uniform.data(), ids.data(), 2, 4, 4, 2, 0.3) ==
        doctest::Approx(0.3).epsilon(1e-14));
  CHECK(k::switch_aux_loss_forward(uniform.data(), ids.data(), 8, 4, 2, 0.3) ==
        doctest::Approx(0.3).epsilon(1e-14));
}

TEST_CASE("balance loss gradients match finite differences") {
  // The counts come from the top-k choice, which is piecewise constant in the scores; the kernels
  // take the ids as an input, so holding them fixed while perturbing the scores differentiates
  // exactly what the model backpropagates (gradient through the normalized probabilities only).
  // Scores in (0.05, 0.95), like sigmoid outputs, so Z_t is well away from zero.
  const int64_t n_seqs = 3, seq_len = 5, e = 6, top_k = 2, n = n_seqs * seq_len;
  const std::vector<int32_t> ids = random_expert_ids(n, top_k, e, 31);
  std::vector<double> scores = latte::test::random_vector(n * e, 32, 0.05, 0.95);
  const double alpha = 0.02, dloss = 1.7;

  auto seq_loss = [&] {
    return dloss *
           k::seq_aux_loss_forward(scores.data(), ids.data(), n_seqs, seq_len, e, top_k, alpha);
  };
  std::vector<double> dseq(n * e, 0.0);
  k::seq_aux_loss_backward(scores.data(), ids.data(), n_seqs, seq_len, e, top_k, alpha, dloss,
                           dseq.data());
  // 1e-7: central differences with eps 1e-6 carry ~1e-10 rounding and ~1e-12 truncation error.
  CHECK(latte::test::max_relative_error(dseq, latte::test::numeric_gradient(seq_loss, scores)) <
        1e-7);

  auto switch_loss = [&] {
    return dloss * k::switch_aux_loss_forward(scores.data(), ids.data(), n, e, top_k, alpha);
  };
  std::vector<double> dswitch(n * e, 0.0);
  k::switch_aux_loss_backward(scores.data(), ids.data(), n, e, top_k, alpha, dloss, dswitch.data());
  CHECK(latte::test::max_relative_error(dswitch,
                                        latte::test::numeric_gradient(switch_loss, scores)) < 1e-7);

  // The two differ when there are several sequences (per-sequence counts vs batch counts).
  CHECK(latte::test::max_relative_error(dseq, dswitch) > 1e-3);

  // Backward adds into dscores: a second call doubles it.
  std::vector<double> twice = dswitch;
  k::switch_aux_loss_backward(scores.data(), ids.data(), n, e, top_k, alpha, dloss, twice.data());
  for (int64_t i = 0; i < n * e; ++i) CHECK(twice[i] == doctest::Approx(2 * dswitch[i]));
}

TEST_CASE_TEMPLATE("update_correction_bias moves by gamma toward the mean load", T, float, double) {
  // load (10, 2, 6, 6), mean 6: expert 0 overloaded (down), expert 1 underloaded (up), experts
  // 2 and 3 exactly at the mean (sign 0: unchanged). gamma = 1/8 keeps every value exact.
  std::vector<T> bias = {T(0.5), T(-0.25), T(0), T(1)};
  const std::vector<int64_t> load = {10, 2, 6, 6};
  k::update_correction_bias(bias.data(), load.data(), 4, T(0.125));
  CHECK(bias == std::vector<T>{T(0.375), T(-0.125), T(0), T(1)});

  // Non-integer mean 1.5 of (1, 2): up and down. Mean 1 of (3, 0, 0): down, up, up.
  std::vector<T> two = {T(0), T(0)};
  const std::vector<int64_t> load_two = {1, 2};
  k::update_correction_bias(two.data(), load_two.data(), 2, T(0.5));
  CHECK(two == std::vector<T>{T(0.5), T(-0.5)});
  std::vector<T> three = {T(0), T(0), T(0)};
  const std::vector<int64_t> load_three = {3, 0, 0};
  k::update_correction_bias(three.data(), load_three.data(), 3, T(0.25));
  CHECK(three == std::vector<T>{T(-0.25), T(0.25), T(0.25)});

  // Perfect balance never moves the bias.
  std::vector<T> even = {T(1), T(2)};
  const std::vector<int64_t> load_even = {7, 7};
  k::update_correction_bias(even.data(), load_even.data(), 2, T(0.5));
  CHECK(even == std::vector<T>{T(1), T(2)});
}

TEST_CASE("load counting and statistics") {
  // Hand-built: load (4, 0, 2, 2): total 8, mean 2, max 4, min 0, max/mean 2,
  // population std = sqrt((2² + 2² + 0 + 0)/4) = sqrt(2), cv = sqrt(2)/2.
  const std::vector<int64_t> load = {4, 0, 2, 2};
  const k::LoadStatistics s = k::load_statistics(load.data(), 4);
  CHECK(s.total == 8);
  CHECK(s.min == 0);
  CHECK(s.max == 4);
  CHECK(s.mean == 2.0);
  CHECK(s.max_over_mean == 2.0);
  CHECK(s.coefficient_of_variation == doctest::Approx(std::sqrt(2.0) / 2).epsilon(1e-15));

  // Perfect balance: ratio 1, cv 0. No tokens: everything 0.
  const std::vector<int64_t> flat = {5, 5, 5};
  CHECK(k::load_statistics(flat.data(), 3).max_over_mean == 1.0);
  CHECK(k::load_statistics(flat.data(), 3).coefficient_of_variation == 0.0);
  const std::vector<int64_t> empty = {0, 0};
  const k::LoadStatistics none = k::load_statistics(empty.data(), 2);
  CHECK(none.total == 0);
  CHECK(none.max_over_mean == 0.0);
  CHECK(none.coefficient_of_variation == 0.0);

  // Counting random ids: the loads add up to N·K, and counting twice (two micro-batches) adds.
  const int64_t n = 50, top_k = 3, e = 8;
  const std::vector<int32_t> ids = random_expert_ids(n, top_k, e, 41);
  std::vector<int64_t> counted(e, 0);
  k::count_expert_load(ids.data(), n * top_k, e, counted.data());
  for (int64_t x = 0; x < e; ++x)
    CHECK(counted[x] == std::count(ids.begin(), ids.end(), static_cast<int32_t>(x)));
  const k::LoadStatistics r = k::load_statistics(counted.data(), e);
  CHECK(r.total == n * top_k);
  CHECK(r.min <= r.mean);
  CHECK(r.mean <= r.max);
  k::count_expert_load(ids.data(), n * top_k, e, counted.data());
  CHECK(k::load_statistics(counted.data(), e).total == 2 * n * top_k);

  const std::vector<int32_t> bad = {1, 8};
  CHECK_THROWS_WITH_AS(k::count_expert_load(bad.data(), 2, e, counted.data()),
                       doctest::Contains("expert id 8"), latte::Error);
}

TEST_CASE("balance losses do not depend on the OpenMP thread count") {
  // The scalar is summed serially in token order, so 1 and 3 threads give the same bits.
  const int64_t n_seqs = 4, seq_len = 250, e = 16, top_k = 4, n = n_seqs * seq_len;
  const std::vector<int32_t> ids = random_expert_ids(n, top_k, e, 51);
  const std::vector<float> scores = [&] {
    const std::vector<double> d = latte::test::random_vector(n * e, 52, 0.01, 0.99);
    return std::vector<float>(d.begin(), d.end());
  }();
  const int saved = omp_get_max_threads();
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> values = {
        k::seq_aux_loss_forward(scores.data(), ids.data(), n_seqs, seq_len, e, top_k, 0.01f),
        k::switch_aux_loss_forward(scores.data(), ids.data(), n, e, top_k, 0.01f)};
    std::vector<float> grad(n * e, 0.0f);
    k::seq_aux_loss_backward(scores.data(), ids.data(), n_seqs, seq_len, e, top_k, 0.01f, 1.0f,
                             grad.data());
    values.insert(values.end(), grad.begin(), grad.end());
    return values;
  };
  const std::vector<float> one = run(1);
  const std::vector<float> three = run(3);
  omp_set_num_threads(saved);
  CHECK(one == three);
}
