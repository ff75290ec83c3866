#include "models/mlp.h"

#include "engine/ops.h"

namespace latte {

SwiGluMlp::SwiGluMlp(int64_t hidden, int64_t intermediate, const InitContext& init)
    : gate_proj_(register_module("gate_proj",
                                 std::make_unique<Linear>(hidden, intermediate, false, init))),
      up_proj_(
          register_module("up_proj", std::make_unique<Linear>(hidden, intermediate, false, init))),
      down_proj_(register_module("down_proj",
                                 std::make_unique<Linear>(intermediate, hidden, false, init))) {}

Tensor SwiGluMlp::forward(const Tensor& x) const {
  return down_proj_.forward(ops::swiglu(gate_proj_.forward(x), up_proj_.forward(x)));
}

}  // namespace latte
