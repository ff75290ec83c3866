#include "support/gradcheck.h"

#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "support/finite_difference.h"

namespace latte::test {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, double eps) {
  Tensor probe = f(inputs);
  Generator gen(12345);
  const Tensor weights = rand_uniform(probe.shape(), gen, 0.5, 1.5, DType::F64);
  auto weighted = [&](const Tensor& y) { return ops::sum(ops::mul(y, weights)); };

  for (const Tensor& x : inputs) const_cast<Tensor&>(x).zero_grad();
  weighted(f(inputs)).backward();

  GradcheckResult result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i];
    const std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    std::vector<double> values = x.to_vector<double>();
    auto loss = [&]() {
      NoGradGuard no_grad;
      x.copy_(Tensor::from_vector(values, x.shape()));
      return weighted(f(inputs)).item();
    };
    const std::vector<double> numeric = numeric_gradient(loss, values, eps);
    x.copy_(Tensor::from_vector(values, x.shape()));
    const double err = max_relative_error(analytic, numeric, 1e-8);
    if (err > result.max_relative_error) {
      result.max_relative_error = err;
      std::ostringstream s;
      s << "input " << i << " " << x.describe();
      result.worst = s.str();
    }
  }
  return result;
}

}  // namespace latte::test
