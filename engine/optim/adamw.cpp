#include "engine/optim/adamw.h"

#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/elementwise.h"

namespace latte {

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : groups_(std::move(groups)), options_(options) {
  for (const ParamGroup& g : groups_) {
    LATTE_CHECK(g.weight_decay >= 0) << "AdamW: weight decay must be >= 0, got " << g.weight_decay;
    for (const auto& [name, p] : g.params) {
      LATTE_CHECK(p.requires_grad()) << "AdamW: parameter '" << name << "' does not require grad";
      LATTE_CHECK(p.is_contiguous()) << "AdamW: parameter '" << name << "' is not contiguous";
      slots_.push_back({name, p, Tensor::zeros(p.shape(), p.dtype(), p.device()),
                        Tensor::zeros(p.shape(), p.dtype(), p.device()), g.weight_decay});
    }
  }
}

void AdamW::step(double lr, double grad_scale) {
  NoGradGuard no_grad;
  profiler::Scope timing(profiler::Category::kOptimizer);
  ++step_;
  for (Slot& s : slots_) {
    const Tensor g = s.param.grad();
    if (!g.defined()) continue;
    ops::detail::require_cpu("AdamW step", s.param);
    const Tensor gc = g.contiguous();
    const kernels::cpu::AdamWStep hp{
        lr, options_.beta1, options_.beta2, options_.eps, s.weight_decay, grad_scale, step_};
    visit_float(s.param.dtype(), "AdamW step", [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::adamw_update(s.param.data<T>(), gc.data<T>(), s.exp_avg.data<T>(),
                                 s.exp_avg_sq.data<T>(), s.param.numel(), hp);
    });
  }
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Slot& s : slots_) {
    out.emplace_back("exp_avg." + s.name, s.exp_avg);
    out.emplace_back("exp_avg_sq." + s.name, s.exp_avg_sq);
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step) {
  std::map<std::string, Tensor> by_name(state.begin(), state.end());
  for (Slot& s : slots_) {
    const std::pair<std::string, Tensor*> moments[] = {{"exp_avg.", &s.exp_avg},
                                                       {"exp_avg_sq.", &s.exp_avg_sq}};
    for (const auto& [key, dst] : moments) {
      const auto it = by_name.find(key + s.name);
      LATTE_CHECK(it != by_name.end()) << "optimizer state: missing '" << key << s.name << "'";
      LATTE_CHECK(it->second.shape() == dst->shape())
          << "optimizer state: '" << key << s.name << "' is " << it->second.describe()
          << ", expected shape " << dst->shape().str();
      dst->copy_(it->second);
    }
  }
  step_ = step;
}

double global_grad_norm(const std::vector<Tensor>& params) {
  double total = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    ops::detail::require_cpu("global_grad_norm", g);
    const Tensor gc = g.contiguous();
    total += visit_float(gc.dtype(), "global_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      return kernels::cpu::sum_squares(gc.data<T>(), gc.numel());
    });
  }
  return std::sqrt(total);
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0 || norm <= max_norm || !std::isfinite(norm)) return 1.0;
  return max_norm / (norm + 1e-6);
}

}  // namespace latte
