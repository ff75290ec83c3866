// DeepSeekMoE router kernels: scores (sigmoid, softmax) against hand values and finite
// differences; expert selection (greedy, group_limited_greedy, noaux_tc) on hand-built score
// matrices; gate weights and their gradient; router spec validation.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/moe_routing.h"
#include "support/finite_difference.h"

namespace {

using latte::kernels::cpu::RouterScoring;
using latte::kernels::cpu::RouterSpec;
using latte::kernels::cpu::RouterTopkMethod;
namespace k = latte::kernels::cpu;

// The ids and weights select_experts chose for a matrix of scores.
template <typename T>
struct Selection {
  std::vector<int32_t> ids;
  std::vector<T> weights;
};

// Runs select_experts on scores[N, E] (bias: nullptr or [E]).
template <typename T>
Selection<T> run_selection(const std::vector<T>& scores,
                           const std::type_identity_t<std::vector<T>>* bias,
                           const RouterSpec& spec) {
  const int64_t n_tokens = static_cast<int64_t>(scores.size()) / spec.n_experts;
  Selection<T> out{std::vector<int32_t>(n_tokens * spec.top_k),
                   std::vector<T>(n_tokens * spec.top_k)};
  k::select_experts(scores.data(), bias ? bias->data() : nullptr, n_tokens, spec, out.ids.data(),
                    out.weights.data());
  return out;
}

RouterSpec make_spec(int64_t n_experts, int64_t top_k, RouterTopkMethod method, int64_t n_group = 1,
                     int64_t topk_group = 1, bool norm = false, double scale = 1.0) {
  RouterSpec spec;
  spec.n_experts = n_experts;
  spec.top_k = top_k;
  spec.method = method;
  spec.n_group = n_group;
  spec.topk_group = topk_group;
  spec.norm_topk_prob = norm;
  spec.routed_scaling_factor = scale;
  return spec;
}

// Sixteenths: every score and bias below is a multiple of 1/16, so sums and differences are exact
// in float and double and the ties written into the tests are exact ties.
template <typename T>
std::vector<T> sixteenths(const std::vector<int>& units) {
  std::vector<T> v;
  for (int u : units) v.push_back(static_cast<T>(u) / T(16));
  return v;
}

}  // namespace

TEST_CASE("router_scores_forward matches sigmoid and softmax hand values") {
  // sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; ±1000 must saturate without overflow (no NaN).
  const std::vector<double> logits = {0.0, std::log(3.0), -std::log(3.0), 1000.0, -1000.0};
  std::vector<double> s(5);
  k::router_scores_forward(logits.data(), 1, 5, RouterScoring::kSigmoid, s.data());
  // 1e-15: a few ulps of values below 1.
  CHECK(s[0] == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(s[1] == doctest::Approx(0.75).epsilon(1e-15));
  CHECK(s[2] == doctest::Approx(0.25).epsilon(1e-15));
  CHECK(s[3] == 1.0);
  CHECK(s[4] == doctest::Approx(0.0));
  CHECK(std::isfinite(s[4]));

  // softmax of (c, c + ln 2, c + ln 3) = (1/6, 2/6, 3/6) for any c; c = 1000 checks the max shift.
  for (double c : {0.0, 1000.0}) {
    const std::vector<double> row = {c, c + std::log(2.0), c + std::log(3.0)};
    std::vector<double> p(3);
    k::router_scores_forward(row.data(), 1, 3, RouterScoring::kSoftmax, p.data());
    // 1e-12: ln 2 and ln 3 added to 1000 lose ~1e-13 of their value to rounding.
    CHECK(p[0] == doctest::Approx(1.0 / 6).epsilon(1e-12));
    CHECK(p[1] == doctest::Approx(2.0 / 6).epsilon(1e-12));
    CHECK(p[2] == doctest::Approx(3.0 / 6).epsilon(1e-12));
  }
}

TEST_CASE("router_scores_backward matches finite differences (sigmoid and softmax)") {
  const int64_t n = 4, e = 6;
  for (RouterScoring scoring : {RouterScoring::kSigmoid, RouterScoring::kSoftmax}) {
    CAPTURE(static_cast<int>(scoring));
    std::vector<double> logits = latte::test::random_vector(n * e, 11, -3, 3);
    const std::vector<double> upstream = latte::test::random_vector(n * e, 12);
    auto loss = [&] {
      std::vector<double> s(n * e);
      k::router_scores_forward(logits.data(), n, e, scoring, s.data());
      double total = 0;
      for (int64_t i = 0; i < n * e; ++i) total += upstream[i] * s[i];
      return total;
    };
    std::vector<double> s(n * e), dlogits(n * e, 0.0);
    k::router_scores_forward(logits.data(), n, e, scoring, s.data());
    k::router_scores_backward(s.data(), upstream.data(), n, e, scoring, dlogits.data());
    const std::vector<double> numeric = latte::test::numeric_gradient(loss, logits);
    // 1e-7: central differences with eps 1e-6 carry ~1e-10 rounding and ~1e-12 truncation error.
    CHECK(latte::test::max_relative_error(dlogits, numeric) < 1e-7);

    // The backward adds into dlogits: a second call doubles it.
    std::vector<double> twice = dlogits;
    k::router_scores_backward(s.data(), upstream.data(), n, e, scoring, twice.data());
    for (int64_t i = 0; i < n * e; ++i) CHECK(twice[i] == doctest::Approx(2 * dlogits[i]));
  }
}

TEST_CASE_TEMPLATE("greedy takes the top-k in descending order, lower index first on ties", T,
                   float, double) {
  // Scores (sixteenths): 2, 11, 5, 11, 14, 3. Top-3: 14 (id 4), then the tie 11/11 between ids 1
  // and 3 broken by the lower index: ids 4, 1, 3.
  const std::vector<T> scores = sixteenths<T>({2, 11, 5, 11, 14, 3});
  const RouterSpec spec = make_spec(6, 3, RouterTopkMethod::kGreedy);
  const Selection<T> got = run_selection(scores, nullptr, spec);
  CHECK(got.ids == std::vector<int32_t>{4, 1, 3});
  CHECK(got.weights == sixteenths<T>({14, 11, 11}));  // no normalization, scale 1: exact

  // greedy never reads the correction bias (only noaux_tc does).
  const std::vector<T> bias = sixteenths<T>({16, 0, 16, 0, 0, 0});
  const Selection<T> with_bias = run_selection(scores, &bias, spec);
  CHECK(with_bias.ids == got.ids);
  CHECK(with_bias.weights == got.weights);
}

TEST_CASE_TEMPLATE("noaux_tc with negative biased scores masks groups to -inf", T, float, double) {
  // E = 8 in n_group = 4 groups of 2, topk_group = 2, K = 3. In sixteenths:
  //   s      = [10, 8 |  5,  3 |  7,  6 |  2,  1]
  //   bias   = [-14,-14 | -6, -6 | -9, -9 | -4, -4]
  //   s_sel  = [-4, -6 | -1, -3 | -2, -3 | -2, -3]   (every selection score is negative)
  // Group score = sum of the top-2 s_sel: g0 = -10, g1 = -4, g2 = -5, g3 = -5. The best two are
  // g1 (-4) and g2 (-5, tied with g3 and kept as the lower group index). Experts 0, 1, 6, 7 go
  // to -inf. Among 2 (-1), 3 (-3), 4 (-2), 5 (-3): ids 2, 4, then the tie 3/5 -> 3.
  // Masking with 0 instead of -inf would have picked the masked experts 0, 1, 6 (0 > -1).
  const std::vector<T> scores = sixteenths<T>({10, 8, 5, 3, 7, 6, 2, 1});
  const std::vector<T> bias = sixteenths<T>({-14, -14, -6, -6, -9, -9, -4, -4});
  const RouterSpec spec = make_spec(8, 3, RouterTopkMethod::kNoauxTc, 4, 2, true, 2.5);
  const Selection<T> got = run_selection(scores, &bias, spec);
  CHECK(got.ids == std::vector<int32_t>{2, 4, 3});
  // Weights gather the unbiased s = 5, 7, 3 sixteenths, normalized by their sum 15 and scaled by
  // 2.5. Tolerance: a few ulps of T.
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  CHECK(got.weights[0] == doctest::Approx(2.5 * 5 / 15).epsilon(tol));
  CHECK(got.weights[1] == doctest::Approx(2.5 * 7 / 15).epsilon(tol));
  CHECK(got.weights[2] == doctest::Approx(2.5 * 3 / 15).epsilon(tol));
}

TEST_CASE_TEMPLATE("group score: noaux_tc sums the top two, group_limited_greedy takes the max", T,
                   float, double) {
  // E = 8 in 4 groups of 2, topk_group = 1, K = 2, no bias. In sixteenths:
  //   s = [14, 1 | 8, 8 | 4, 4 | 2, 2]
  // noaux_tc group scores (top-2 sums): 15, 16, 8, 4 -> group 1 -> ids 2, 3 (tie -> 2 first).
  // group_limited_greedy group scores (max): 14, 8, 4, 2 -> group 0 -> ids 0, 1.
  // greedy over all experts: 14 (id 0), then 8 tied between 2 and 3 -> ids 0, 2.
  const std::vector<T> scores = sixteenths<T>({14, 1, 8, 8, 4, 4, 2, 2});
  CHECK(run_selection(scores, nullptr, make_spec(8, 2, RouterTopkMethod::kNoauxTc, 4, 1)).ids ==
        std::vector<int32_t>{2, 3});
  CHECK(run_selection(scores, nullptr, make_spec(8, 2, RouterTopkMethod::kGroupLimitedGreedy, 4, 1))
            .ids == std::vector<int32_t>{0, 1});
  CHECK(run_selection(scores, nullptr, make_spec(8, 2, RouterTopkMethod::kGreedy)).ids ==
        std::vector<int32_t>{0, 2});
}

TEST_CASE_TEMPLATE("group_limited_greedy keeps the best groups per token and ignores the bias", T,
                   float, double) {
  // E = 6 in 3 groups of 2, topk_group = 2, K = 3, two tokens.
  // token 0: s = [.1, .8 | .7, .65 | .75, .05]; group max .8, .7, .75 -> keep groups 0 and 2;
  //          candidates 1 (.8), 4 (.75), 0 (.1), 5 (.05) -> ids 1, 4, 0 (greedy would take 2).
  // token 1: s = [.3, .2 | .9, .1 | .4, .35]; group max .3, .9, .4 -> keep groups 1 and 2;
  //          candidates 2 (.9), 4 (.4), 5 (.35), 3 (.1) -> ids 2, 4, 5.
  const std::vector<T> scores = {T(.1), T(.8), T(.7), T(.65), T(.75), T(.05),
                                 T(.3), T(.2), T(.9), T(.1),  T(.4),  T(.35)};
  const RouterSpec spec = make_spec(6, 3, RouterTopkMethod::kGroupLimitedGreedy, 3, 2, false, 1.5);
  const Selection<T> got = run_selection(scores, nullptr, spec);
  CHECK(got.ids == std::vector<int32_t>{1, 4, 0, 2, 4, 5});
  // Unnormalized weights are the gathered scores times 1.5, computed in T.
  const std::vector<T> expected = {T(1.5) * T(.8), T(1.5) * T(.75), T(1.5) * T(.1),
                                   T(1.5) * T(.9), T(1.5) * T(.4),  T(1.5) * T(.35)};
  CHECK(got.weights == expected);

  const std::vector<T> bias = {T(5), T(5), T(0), T(0), T(0), T(0)};
  CHECK(run_selection(scores, &bias, spec).ids == got.ids);
  CHECK(run_selection(scores, nullptr, make_spec(6, 3, RouterTopkMethod::kGreedy)).ids ==
        std::vector<int32_t>{1, 4, 2, 2, 4, 5});
}

TEST_CASE_TEMPLATE("noaux_tc: the bias changes the choice, never the weights", T, float, double) {
  // One group (n_group = topk_group = 1, the config default), E = 4, K = 2.
  // s = [8, 7, 6, 3] sixteenths. Without bias: ids 0, 1. With bias +3/16 on expert 2 its s_sel
  // becomes 9 > 8: ids 2, 0; the weights still gather s (6 and 8), not s + bias.
  const std::vector<T> scores = sixteenths<T>({8, 7, 6, 3});
  const std::vector<T> bias = sixteenths<T>({0, 0, 3, 0});
  const RouterSpec plain = make_spec(4, 2, RouterTopkMethod::kNoauxTc);
  CHECK(run_selection(scores, nullptr, plain).ids == std::vector<int32_t>{0, 1});
  const Selection<T> biased = run_selection(scores, &bias, plain);
  CHECK(biased.ids == std::vector<int32_t>{2, 0});
  CHECK(biased.weights == sixteenths<T>({6, 8}));

  // With norm_topk_prob: 6/14 and 8/14, times 2.5. Tolerance: a few ulps of T.
  const RouterSpec normed = make_spec(4, 2, RouterTopkMethod::kNoauxTc, 1, 1, true, 2.5);
  const Selection<T> biased_norm = run_selection(scores, &bias, normed);
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  CHECK(biased_norm.weights[0] == doctest::Approx(2.5 * 6 / 14).epsilon(tol));
  CHECK(biased_norm.weights[1] == doctest::Approx(2.5 * 8 / 14).epsilon(tol));
}

TEST_CASE("expert_weights_backward matches finite differences") {
  // The selection is piecewise constant in the scores: the gradient of the weights is taken with
  // the chosen experts held fixed. Random scores in (0.05, 0.95) have gaps far above the 1e-6
  // finite-difference step, so perturbing one score never changes the choice; the loss checks
  // that the ids stay those of the unperturbed scores, so the test cannot silently cross a tie.
  struct Case {
    const char* name;
    RouterSpec spec;
    bool bias;
  };
  const Case cases[] = {
      {"greedy, raw weights", make_spec(8, 3, RouterTopkMethod::kGreedy), false},
      {"greedy, scale 2.5", make_spec(8, 3, RouterTopkMethod::kGreedy, 1, 1, false, 2.5), false},
      {"greedy, normalized", make_spec(8, 3, RouterTopkMethod::kGreedy, 1, 1, true, 1.0), false},
      {"noaux_tc, groups, bias, normalized, scale 2.5",
       make_spec(8, 3, RouterTopkMethod::kNoauxTc, 4, 2, true, 2.5), true},
      {"group_limited_greedy, normalized, scale 1.5",
       make_spec(8, 2, RouterTopkMethod::kGroupLimitedGreedy, 4, 2, true, 1.5), false},
  };
  const int64_t n = 5, e = 8;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::vector<double> scores = latte::test::random_vector(n * e, 21, 0.05, 0.95);
    const std::vector<double> bias = latte::test::random_vector(e, 22, -0.3, 0.3);
    const std::vector<double>* bias_ptr = c.bias ? &bias : nullptr;
    const std::vector<double> upstream = latte::test::random_vector(n * c.spec.top_k, 23);
    const Selection<double> base = run_selection(scores, bias_ptr, c.spec);
    auto loss = [&] {
      const Selection<double> now = run_selection(scores, bias_ptr, c.spec);
      REQUIRE(now.ids == base.ids);
      double total = 0;
      for (size_t i = 0; i < now.weights.size(); ++i) total += upstream[i] * now.weights[i];
      return total;
    };
    std::vector<double> dscores(n * e, 0.0);
    k::expert_weights_backward(scores.data(), base.ids.data(), upstream.data(), n, c.spec,
                               dscores.data());
    const std::vector<double> numeric = latte::test::numeric_gradient(loss, scores);
    // 1e-7: central differences with eps 1e-6 carry ~1e-10 rounding and ~1e-12 truncation error.
    CHECK(latte::test::max_relative_error(dscores, numeric) < 1e-7);
  }
}

TEST_CASE("check_router_spec names the key and the values") {
  auto message = [](const RouterSpec& spec) {
    try {
      k::check_router_spec(spec, "moe router");
    } catch (const latte::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message(make_spec(8, 2, RouterTopkMethod::kNoauxTc, 4, 2)).empty());
  // Greedy ignores the group keys.
  CHECK(message(make_spec(8, 2, RouterTopkMethod::kGreedy, 3, 5)).empty());
  CHECK(message(make_spec(8, 9, RouterTopkMethod::kGreedy)).find("num_experts_per_tok") !=
        std::string::npos);
  CHECK(message(make_spec(8, 2, RouterTopkMethod::kNoauxTc, 3, 1)).find("n_group") !=
        std::string::npos);
  CHECK(message(make_spec(8, 2, RouterTopkMethod::kGroupLimitedGreedy, 4, 5)).find("topk_group") !=
        std::string::npos);
  const std::string too_many = message(make_spec(8, 5, RouterTopkMethod::kNoauxTc, 4, 2));
  CHECK(too_many.find("moe router") != std::string::npos);
  CHECK(too_many.find("num_experts_per_tok = 5") != std::string::npos);
  CHECK(message(make_spec(8, 2, RouterTopkMethod::kGreedy, 1, 1, false, INFINITY))
            .find("routed_scaling_factor") != std::string::npos);
}
