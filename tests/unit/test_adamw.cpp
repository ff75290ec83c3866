// AdamW against a hand-computed update; gradient clipping; parameter groups.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/optim/adamw.h"

using namespace latte;

TEST_CASE("one AdamW step equals the hand-computed update") {
  Tensor p = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2});
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(std::vector<double>{0.5, -0.1}, {2}));
  AdamW opt({ParamGroup{{{"p", p}}, 0.1}}, AdamWOptions{0.9, 0.999, 1e-8});
  opt.step(0.01);
  // step 1: m = 0.1 g, v = 0.001 g²; m̂ = g, v̂ = g², update = g/(|g| + eps) ≈ sign(g).
  const double u0 = 0.5 / (0.5 + 1e-8), u1 = -0.1 / (0.1 + 1e-8);
  const auto v = p.to_vector<double>();
  CHECK(v[0] == doctest::Approx(1.0 - 0.01 * (u0 + 0.1 * 1.0)).epsilon(1e-14));
  CHECK(v[1] == doctest::Approx(-2.0 - 0.01 * (u1 + 0.1 * -2.0)).epsilon(1e-14));
  // step 2 with a new gradient, checked against the formulas.
  p.set_grad(Tensor::from_vector(std::vector<double>{-0.2, 0.3}, {2}));
  opt.step(0.01);
  const double m = 0.9 * (0.1 * 0.5) + 0.1 * -0.2, vv = 0.999 * (0.001 * 0.25) + 0.001 * 0.04;
  const double mh = m / (1 - 0.81), vh = vv / (1 - 0.999 * 0.999);
  const double expected = v[0] - 0.01 * (mh / (std::sqrt(vh) + 1e-8) + 0.1 * v[0]);
  CHECK(p.to_vector<double>()[0] == doctest::Approx(expected).epsilon(1e-12));
  CHECK(opt.step_count() == 2);
}

TEST_CASE("groups without weight decay and parameters without gradients") {
  Tensor a = Tensor::ones({1}, DType::F64), b = Tensor::ones({1}, DType::F64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  a.set_grad(Tensor::zeros({1}, DType::F64));
  AdamW opt({ParamGroup{{{"a", a}}, 0.0}, ParamGroup{{{"b", b}}, 0.5}}, AdamWOptions{});
  opt.step(0.1);
  CHECK(a.item() == 1.0);  // zero gradient, no decay
  CHECK(b.item() == 1.0);  // no gradient: untouched, even with decay
}

TEST_CASE("global-norm clipping scales the gradient into the update") {
  Tensor p = Tensor::zeros({2}, DType::F64);
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(std::vector<double>{3.0, 4.0}, {2}));
  CHECK(global_grad_norm({p}) == doctest::Approx(5.0));
  CHECK(clip_scale(5.0, 1.0) == doctest::Approx(0.2).epsilon(1e-6));
  CHECK(clip_scale(0.5, 1.0) == 1.0);
  CHECK(clip_scale(5.0, 0.0) == 1.0);
  // With scale 0.2 the first Adam step is still ±lr (Adam is scale-invariant at step 1), but
  // the stored moments are those of the clipped gradient.
  AdamW opt({ParamGroup{{{"p", p}}, 0.0}}, AdamWOptions{0.9, 0.999, 1e-8});
  opt.step(1.0, clip_scale(5.0, 1.0));
  const auto state = opt.state();
  CHECK(state[0].first == "exp_avg.p");
  CHECK(state[0].second.to_vector<double>()[0] == doctest::Approx(0.1 * 0.6));
}
