#include "engine/optim/adamw.h"

#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/backend/optimizer_kernels.h"
#include "engine/profiler.h"

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
  // Slots lie group by group: each run of slots with one weight decay and one device is one
  // kernel-table call, which updates all of them together.
  std::vector<AdamWParam> run;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    const Tensor g = s.param.grad();
    if (g.defined()) {
      LATTE_CHECK(g.device() == s.param.device() && g.shape() == s.param.shape())
          << "AdamW step: gradient " << g.describe() << " of parameter '" << s.name << "' "
          << s.param.describe() << " differs in shape or device";
      run.push_back({s.param, g.contiguous(), s.exp_avg, s.exp_avg_sq, s.param.compute_copy()});
    }
    const bool run_ends = i + 1 == slots_.size() || slots_[i + 1].weight_decay != s.weight_decay ||
                          slots_[i + 1].param.device() != s.param.device();
    if (!run_ends || run.empty()) continue;
    const AdamWStep hp{.lr = lr,
                       .beta1 = options_.beta1,
                       .beta2 = options_.beta2,
                       .eps = options_.eps,
                       .weight_decay = s.weight_decay,
                       .grad_scale = grad_scale,
                       .step = step_};
    optimizer_kernels(s.param.device()).adamw_update(run, hp);
    for (const AdamWParam& p : run)
      if (p.compute_copy.defined()) p.param.mark_compute_copy_current();
    run.clear();
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
  profiler::Scope timing(profiler::Category::kGradNorm);
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    LATTE_CHECK(grads.empty() || g.device() == grads.front().device())
        << "global_grad_norm: gradients on " << device_name(grads.front().device()) << " and "
        << device_name(g.device()) << ": " << g.describe();
    grads.push_back(g.contiguous());
  }
  if (grads.empty()) return 0;
  return std::sqrt(optimizer_kernels(grads.front().device()).sum_squares(grads));
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0 || norm <= max_norm || !std::isfinite(norm)) return 1.0;
  return max_norm / (norm + 1e-6);
}

}  // namespace latte
