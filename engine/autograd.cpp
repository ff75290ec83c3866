#include "engine/autograd.h"

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

Tensor record(const char* op_name, Tensor output, const std::vector<Tensor>& inputs,
              Node::BackwardFn backward) {
  if (!g_grad_enabled) return output;
  std::vector<std::shared_ptr<AutogradMeta>> edges;
  edges.reserve(inputs.size());
  bool any = false;
  for (const Tensor& in : inputs) {
    if (in.requires_grad()) {
      edges.push_back(in.autograd_meta());
      any = true;
    } else {
      edges.push_back(nullptr);
    }
  }
  if (!any) return output;
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::make_shared<Node>(op_name, std::move(edges), std::move(backward));
  output.set_autograd_meta(std::move(meta));
  return output;
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
      std::shared_ptr<Node> child = edge ? edge->grad_fn : nullptr;
      if (child && visited.insert(child.get()).second) stack.emplace_back(std::move(child), 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};
}

// Leaf gradients are owned copies (later accumulation happens in place); gradients in flight
// may alias saved tensors, so a second contribution is added out of place.
void accumulate_leaf(Tensor& slot, const Tensor& grad, const Node& from) {
  if (!slot.defined()) {
    slot = grad.clone();
  } else {
    LATTE_CHECK(slot.shape() == grad.shape())
        << "backward of " << from.name() << ": gradient " << grad.describe()
        << " does not match the accumulated " << slot.describe();
    ops::add_(slot, grad);
  }
}

void accumulate_pending(Tensor& slot, const Tensor& grad) {
  slot = slot.defined() ? ops::add(slot, grad) : grad;
}

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
  std::unordered_map<Node*, Tensor> pending;
  pending[root_node.get()] = start;
  for (const std::shared_ptr<Node>& node : reverse_topological_order(root_node)) {
    auto it = pending.find(node.get());
    if (it == pending.end()) continue;  // no gradient flows into this node
    const Tensor grad_out = std::move(it->second);
    pending.erase(it);
    LATTE_CHECK(!node->released()) << "backward: node " << node->name() << " was already released";
    std::vector<Tensor> grads = node->run(grad_out);
    const auto& inputs = node->inputs();
    LATTE_CHECK(grads.size() == inputs.size())
        << "backward of " << node->name() << ": returned " << grads.size() << " gradients for "
        << inputs.size() << " inputs";
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto& meta = inputs[i];
      if (!meta || !grads[i].defined()) continue;
      if (meta->grad_fn) {
        accumulate_pending(pending[meta->grad_fn.get()], grads[i]);
      } else if (meta->requires_grad) {
        accumulate_leaf(meta->grad, grads[i], *node);
      }
    }
    node->release();
  }
}

}  // namespace latte
