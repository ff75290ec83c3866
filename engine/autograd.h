// Define-by-run reverse-mode autograd. Each differentiable op records one Node holding a
// backward function (which captures the tensors it needs) and edges to its inputs' autograd
// slots. backward() runs the nodes in reverse topological order, accumulates into leaf .grad,
// and releases every node's saved tensors as soon as it has run.
//
// Window gradients: a node taking a slice of its input (narrow, select) returns the slice's
// gradient as is and the engine places it; the slices of one tensor that reach it are assembled
// once when the tensor's node runs (written side by side when they tile it, so the two halves of
// a split cost one copy each instead of a zero-filled full tensor and an add apiece).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace latte {

// Where a window node's output lies in its single input: at offset `start` along `dim` of a
// tensor shaped `input_shape` (zero elsewhere, as far as the gradient is concerned).
struct InputWindow {
  int dim = 0;
  int64_t start = 0;
  Shape input_shape;
};

// One input of a node: its autograd slot (nullptr when it needs no gradient) and its dtype, which
// the gradient sent to it must have.
struct Edge {
  std::shared_ptr<AutogradMeta> meta;
  DType dtype;
};

class Node {
 public:
  // Maps the gradient of the node's output to one gradient per input (undefined = none). The
  // engine keeps no reference to grad_output once the function returns, so a function may write
  // its result into grad_output's memory when grad_output.is_sole_owner() (rope does).
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  Node(const char* name, std::vector<Edge> inputs, BackwardFn fn,
       std::optional<InputWindow> window = std::nullopt)
      : name_(name), inputs_(std::move(inputs)), fn_(std::move(fn)), window_(std::move(window)) {}

  const char* name() const { return name_; }
  // Set for window nodes: the gradient they return is this window of their input's gradient.
  const std::optional<InputWindow>& window() const { return window_; }
  const std::vector<Edge>& inputs() const { return inputs_; }
  bool released() const { return !fn_; }
  std::vector<Tensor> run(const Tensor& grad_output) const { return fn_(grad_output); }
  // Frees the saved tensors and the edges; the node cannot run again.
  void release() {
    fn_ = nullptr;
    inputs_.clear();
  }

 private:
  const char* name_;
  std::vector<Edge> inputs_;
  BackwardFn fn_;
  std::optional<InputWindow> window_;
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

// Records `output` as the window `window` of `input` (a view: narrow); its gradient flows back
// into that window of the input's gradient.
Tensor record_window(const char* op_name, Tensor output, const Tensor& input, InputWindow window);

// Runs backpropagation from `root` (one element) with d root = `seed` (ones when undefined).
void run_backward(const Tensor& root, const Tensor& seed = Tensor());

}  // namespace latte
