// Basic parameterized layers built from engine ops: Linear (weight [out, in], optional bias)
// and RMSNorm. Weights start from N(0, initializer_range²), biases at 0, norm weights at 1.
// Layers compute in their input's dtype: parameters (the fp32 master copy in mixed precision)
// are cast to it on the way in, and gradients flow back through the cast.
#pragma once

#include <cstdint>

#include "engine/module.h"
#include "engine/random.h"

namespace latte {

// Parameter creation settings shared by a model's modules.
struct InitContext {
  Generator* gen;
  double std;
  DType dtype;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, const InitContext& init);
  Tensor forward(const Tensor& x) const;
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_, bias_;
};

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, const InitContext& init);
  Tensor forward(const Tensor& x) const;

 private:
  Tensor weight_;
  double eps_;
};

// Token embedding table [vocab, dim] (also the output head when embeddings are tied).
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, const InitContext& init);
  // The rows of `ids` in `dtype`: the weight's, or one whose master dtype it has.
  Tensor forward(const Tensor& ids, DType dtype) const;
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

// Children named "0", "1", … (the Hugging Face `layers.{i}` convention).
template <typename M>
class ModuleList : public Module {
 public:
  M& add(std::unique_ptr<M> m) {
    M& ref = register_module(std::to_string(items_.size()), std::move(m));
    items_.push_back(&ref);
    return ref;
  }
  size_t size() const { return items_.size(); }
  M& operator[](size_t i) const { return *items_[i]; }

 private:
  std::vector<M*> items_;
};

}  // namespace latte
