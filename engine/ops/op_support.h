// Helpers shared by op implementations: argument checks with op-naming messages, broadcasting
// arithmetic, and detached handles for saved tensors.
#pragma once

#include <string>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace latte::ops::detail {

// Throws unless the tensor is defined.
void require_defined(const char* op, const Tensor& t);
// Throws unless the tensor is defined and lives on the CPU (for the few ops that read values on
// the host).
void require_cpu(const char* op, const Tensor& t);
void require_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// Throws unless `weight` (named `what` in the message) is on x's device with x's dtype or x's
// master dtype (master_dtype: the weights of mixed precision, read rounded to x's dtype).
void require_weight_dtype(const char* op, const Tensor& x, const Tensor& weight, const char* what);
void require_rank_at_least(const char* op, const Tensor& t, int rank, const char* what);

// NumPy broadcast of two shapes; error naming op and shapes when incompatible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Strides that read `t` as if it had shape `out` (0 in broadcast dimensions).
Shape broadcast_strides(const Tensor& t, const Shape& out);
// Normalizes a possibly negative dimension index; error naming op when out of range.
int wrap_dim(const char* op, int dim, int rank);

// What backward closures capture: a handle without autograd history.
inline Tensor saved(const Tensor& t) {
  return t.defined() ? t.detach() : t;
}

}  // namespace latte::ops::detail
