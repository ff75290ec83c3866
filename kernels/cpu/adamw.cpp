#include "kernels/cpu/adamw.h"

#include <cmath>

namespace latte::kernels::cpu {

template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWStep& s) {
  const double c1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double c2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T lr = static_cast<T>(s.lr), wd = static_cast<T>(s.weight_decay);
  const T eps = static_cast<T>(s.eps), gs = static_cast<T>(s.grad_scale);
  const T inv_c1 = static_cast<T>(1.0 / c1), inv_sqrt_c2 = static_cast<T>(1.0 / std::sqrt(c2));
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] * gs;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    const T update = (m[i] * inv_c1) / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
    param[i] -= lr * (update + wd * param[i]);
  }
}

template void adamw_update<float>(float*, const float*, float*, float*, int64_t, const AdamWStep&);
template void adamw_update<double>(double*, const double*, double*, double*, int64_t,
                                   const AdamWStep&);

}  // namespace latte::kernels::cpu
