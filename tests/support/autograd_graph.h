// What an autograd graph holds: tests that a path they mean to cover is the one taken.
#pragma once

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

namespace ttt::testing {

// Whether a node whose name contains `name` is reachable from t's grad_fn.
inline bool graph_has_node(const torch::Tensor& t, const std::string& name) {
  std::vector<torch::autograd::Node*> stack{t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find(name) != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return false;
}

}  // namespace ttt::testing
