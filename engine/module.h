// Module: a node in the parameter tree. Modules register parameters (trainable leaves),
// buffers (persistent state that is not trained, e.g. the MoE correction bias) and child
// modules under short names; full names are composed from the path
// ("model.layers.0.self_attn.q_a_proj.weight"), so no name is ever typed twice. These names are
// the checkpoint keys.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace latte {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

  // Every parameter below this module, depth first in registration order, with full names.
  NamedTensors named_parameters(const std::string& prefix = "") const;
  NamedTensors named_buffers(const std::string& prefix = "") const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;
  void zero_grad();

  // Moves every parameter and buffer below this module to `device`, in place: handles held by
  // modules and optimizers keep referring to them. Gradients are dropped.
  void to(Device device);

  // Training mode (dropout, router noise) for this module and its children.
  void set_training(bool training);
  bool training() const { return training_; }

 protected:
  // Registers a trainable parameter (marked requires_grad) and returns the stored handle.
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  M& register_module(const std::string& name, std::unique_ptr<M> module) {
    M& ref = *module;
    add_child(name, std::move(module));
    return ref;
  }

 private:
  void add_child(const std::string& name, std::unique_ptr<Module> child);
  void collect(const std::string& prefix, bool parameters, NamedTensors* out) const;

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace latte
