#include "engine/autograd.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace latte {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}

namespace {

// The edges of `inputs` (no slot where an input needs no gradient); empty when none needs one.
std::vector<Edge> edges_of(const std::vector<Tensor>& inputs) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  bool any = false;
  for (const Tensor& in : inputs) {
    const bool needs = in.requires_grad();
    edges.push_back({needs ? in.autograd_meta() : nullptr, needs ? in.dtype() : DType::F32});
    any = any || needs;
  }
  if (!any) edges.clear();
  return edges;
}

Tensor attach(Tensor output, std::shared_ptr<Node> node) {
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  output.set_autograd_meta(std::move(meta));
  return output;
}

}  // namespace

Tensor record(const char* op_name, Tensor output, const std::vector<Tensor>& inputs,
              Node::BackwardFn backward) {
  if (!g_grad_enabled) return output;
  std::vector<Edge> edges = edges_of(inputs);
  if (edges.empty()) return output;
  return attach(std::move(output),
                std::make_shared<Node>(op_name, std::move(edges), std::move(backward)));
}

Tensor record_window(const char* op_name, Tensor output, const Tensor& input, InputWindow window) {
  if (!g_grad_enabled) return output;
  std::vector<Edge> edges = edges_of({input});
  if (edges.empty()) return output;
  return attach(std::move(output),
                std::make_shared<Node>(
                    op_name, std::move(edges),
                    [](const Tensor& g) { return std::vector<Tensor>{g}; }, std::move(window)));
}

namespace {

// Nodes reachable from `root`, ordered so that every node comes before the nodes it feeds.
// Holds them by shared_ptr: releasing a node drops its edges, which may own its inputs' nodes.
std::vector<std::shared_ptr<Node>> reverse_topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited;
  // Iterative post-order DFS (graphs can be deep: one chain per layer and op).
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  visited.insert(root.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs().size()) {
      const auto& edge = node->inputs()[next++];
      std::shared_ptr<Node> child = edge.meta ? edge.meta->grad_fn : nullptr;
      if (child && visited.insert(child.get()).second) stack.emplace_back(std::move(child), 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};
}

// Leaf gradients are owned (later accumulation happens in place): a gradient nothing else can
// reach is taken over, any other is copied, since gradients in flight may alias saved tensors.
void accumulate_leaf(Tensor& slot, Tensor grad, const Node& from) {
  if (!slot.defined()) {
    slot = grad.is_sole_owner() ? std::move(grad) : grad.clone();
  } else {
    LATTE_CHECK(slot.shape() == grad.shape())
        << "backward of " << from.name() << ": gradient " << grad.describe()
        << " does not match the accumulated " << slot.describe();
    ops::add_(slot, grad);
  }
}

// The gradient contributions that reached one tensor: whole-tensor ones summed as they arrive,
// window ones (from its slices) kept until the tensor's gradient is taken.
struct PendingGradient {
  Tensor whole;
  std::vector<std::pair<Tensor, InputWindow>> windows;

  void add(const Tensor& grad, const std::optional<InputWindow>& window) {
    if (window)
      windows.emplace_back(grad, *window);
    else
      whole = whole.defined() ? ops::add(whole, grad) : grad;
  }

  // Whether the windows lie side by side along one dimension without overlap, and whether they
  // also cover it.
  std::pair<bool, bool> disjoint_and_tiling() const {
    std::vector<std::pair<int64_t, int64_t>> ranges;  // [start, end) along the common dim
    const int dim = windows.front().second.dim;
    for (const auto& [grad, w] : windows) {
      if (w.dim != dim) return {false, false};
      ranges.emplace_back(w.start, w.start + grad.shape()[dim]);
    }
    std::sort(ranges.begin(), ranges.end());
    int64_t end = 0, covered = 0;
    for (const auto& [begin, stop] : ranges) {
      if (begin < end) return {false, false};
      end = stop;
      covered += stop - begin;
    }
    return {true, covered == windows.front().second.input_shape[dim]};
  }

  // The sum of the contributions: the windows written into place (or added where they overlap
  // or meet whole contributions) in a tensor of the input's shape.
  Tensor take() {
    if (windows.empty()) return whole;
    const auto [disjoint, tiling] = disjoint_and_tiling();
    const Tensor& first = windows.front().first;
    const Shape& shape = windows.front().second.input_shape;
    const bool place = disjoint && !whole.defined();
    Tensor out = whole.defined()   ? whole.clone()
                 : place && tiling ? Tensor::empty(shape, first.dtype(), first.device())
                                   : Tensor::zeros(shape, first.dtype(), first.device());
    for (const auto& [grad, w] : windows) {
      Tensor view =
          Tensor::make_view(out, grad.shape(), out.strides(), w.start * out.strides()[w.dim]);
      view.copy_(place ? grad : ops::add(view, grad));
    }
    return out;
  }
};

}  // namespace

void run_backward(const Tensor& root, const Tensor& seed) {
  LATTE_CHECK(root.requires_grad())
      << "backward: " << root.describe() << " does not require grad (no parameter reached it)";
  LATTE_CHECK(seed.defined() || root.numel() == 1)
      << "backward: needs a one-element loss, got " << root.describe();
  const Tensor start =
      seed.defined() ? seed : Tensor::ones(root.shape(), root.dtype(), root.device());
  const std::shared_ptr<Node> root_node = root.grad_fn();
  if (root_node == nullptr) {  // a leaf: d root / d root
    NoGradGuard no_grad;
    Tensor& slot = root.autograd_meta()->grad;
    slot = slot.defined() ? ops::add(slot, start) : start.clone();
    return;
  }
  LATTE_CHECK(!root_node->released())
      << "backward: the graph of " << root.describe()
      << " was already used by a backward pass and its saved tensors are freed";

  NoGradGuard no_grad;
  std::unordered_map<Node*, PendingGradient> pending;
  pending[root_node.get()].add(start, std::nullopt);
  for (const std::shared_ptr<Node>& node : reverse_topological_order(root_node)) {
    auto it = pending.find(node.get());
    if (it == pending.end()) continue;  // no gradient flows into this node
    const Tensor grad_out = it->second.take();
    pending.erase(it);
    LATTE_CHECK(!node->released()) << "backward: node " << node->name() << " was already released";
    std::vector<Tensor> grads = node->run(grad_out);
    const auto& inputs = node->inputs();
    LATTE_CHECK(grads.size() == inputs.size())
        << "backward of " << node->name() << ": returned " << grads.size() << " gradients for "
        << inputs.size() << " inputs";
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto& meta = inputs[i].meta;
      if (!meta || !grads[i].defined()) continue;
      LATTE_CHECK(grads[i].dtype() == inputs[i].dtype)
          << "backward of " << node->name() << ": the gradient of input " << i << ", "
          << grads[i].describe() << ", does not have the input's dtype "
          << dtype_name(inputs[i].dtype);
      if (meta->grad_fn) {
        pending[meta->grad_fn.get()].add(grads[i], node->window());
      } else if (meta->requires_grad && node->window()) {
        PendingGradient slice;
        slice.add(grads[i], node->window());
        accumulate_leaf(meta->grad, slice.take(), *node);
      } else if (meta->requires_grad) {
        accumulate_leaf(meta->grad, std::move(grads[i]), *node);
      }
    }
    node->release();
  }
}

}  // namespace latte
