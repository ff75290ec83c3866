// Define-by-run reverse-mode autograd. Each differentiable op records one Node holding a
// backward function (which captures the tensors it needs) and edges to its inputs' autograd
// slots. backward() runs the nodes in reverse topological order, accumulates into leaf .grad,
// and releases every node's saved tensors as soon as it has run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace latte {

class Node {
 public:
  // Maps the gradient of the node's output to one gradient per input (undefined = none).
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  Node(const char* name, std::vector<std::shared_ptr<AutogradMeta>> inputs, BackwardFn fn)
      : name_(name), inputs_(std::move(inputs)), fn_(std::move(fn)) {}

  const char* name() const { return name_; }
  const std::vector<std::shared_ptr<AutogradMeta>>& inputs() const { return inputs_; }
  bool released() const { return !fn_; }
  std::vector<Tensor> run(const Tensor& grad_output) const { return fn_(grad_output); }
  // Frees the saved tensors and the edges; the node cannot run again.
  void release() {
    fn_ = nullptr;
    inputs_.clear();
  }

 private:
  const char* name_;
  std::vector<std::shared_ptr<AutogradMeta>> inputs_;  // nullptr where the input needs no grad
  BackwardFn fn_;
};

// Whether ops record nodes on this thread (true by default).
bool grad_enabled();

// Disables recording for its lifetime (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Records `output = op(inputs)` when grad mode is on and some input requires grad; returns
// `output` (now carrying the node). Backward functions must capture only detached tensors
// (Tensor::detach) so that no node keeps its own output alive.
Tensor record(const char* op_name, Tensor output, const std::vector<Tensor>& inputs,
              Node::BackwardFn backward);

// Runs backpropagation from `root` (one element) with d root = `seed` (ones when undefined).
void run_backward(const Tensor& root, const Tensor& seed = Tensor());

}  // namespace latte
