#include "engine/dist/average_gradients.h"

namespace latte {

void average_gradients(const std::vector<Tensor>& params, Communicator& comm) {
  if (comm.world_size() == 1) return;
  std::vector<int64_t> reached(params.size());
  for (size_t i = 0; i < params.size(); ++i) reached[i] = params[i].grad().defined() ? 1 : 0;
  comm.allreduce_sum(reached);
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (reached[i] == 0) continue;
    Tensor p = params[i];
    if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    grads.push_back(p.grad());
  }
  comm.allreduce_mean(grads);
}

}  // namespace latte
