#include "engine/module.h"

#include "engine/error.h"

namespace latte {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  LATTE_CHECK(value.defined()) << "register_parameter: '" << name << "' is undefined";
  for (const auto& [n, t] : parameters_)
    LATTE_CHECK(n != name) << "register_parameter: '" << name << "' registered twice";
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  LATTE_CHECK(value.defined()) << "register_buffer: '" << name << "' is undefined";
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::unique_ptr<Module> child) {
  for (const auto& [n, c] : children_)
    LATTE_CHECK(n != name) << "register_module: '" << name << "' registered twice";
  child->training_ = training_;
  children_.emplace_back(name, std::move(child));
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors* out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_)
    out->emplace_back(join(prefix, name), t);
  for (const auto& [name, child] : children_) child->collect(join(prefix, name), parameters, out);
}

Module::NamedTensors Module::named_parameters(const std::string& prefix) const {
  NamedTensors out;
  collect(prefix, true, &out);
  return out;
}

Module::NamedTensors Module::named_buffers(const std::string& prefix) const {
  NamedTensors out;
  collect(prefix, false, &out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) t.zero_grad();
}

void Module::to(Device device) {
  for (auto* group : {&parameters_, &buffers_})
    for (auto& [name, t] : *group) {
      t.zero_grad();
      if (t.device() != device) t.set_data(t.detach().to(device));
    }
  for (auto& [name, child] : children_) child->to(device);
}

void Module::set_training(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->set_training(training);
}

}  // namespace latte
