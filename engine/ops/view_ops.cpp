// Views and copies: the Tensor methods reshape/view/transpose/permute/narrow/select/unsqueeze/
// squeeze/contiguous/clone/to, and concat/split/broadcast_to. Views share storage; each records
// an autograd node whose backward maps the gradient back to the source's shape.
#include <numeric>

#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"

namespace latte {

using ops::detail::saved;
using ops::detail::wrap_dim;

namespace {

// Strides for viewing `t` with `shape` without copying; false when the existing strides cannot
// express it. Old dimensions are taken in contiguous chunks, each of which must be covered by a
// run of new dimensions with the same element count.
bool view_strides(const Tensor& t, const Shape& shape, Shape* out) {
  if (t.is_contiguous()) {
    *out = contiguous_strides(shape);
    return true;
  }
  const Shape& old_shape = t.shape();
  const Shape& old_strides = t.strides();
  Shape strides = shape;
  int view_d = shape.size() - 1;
  int64_t chunk_stride = old_strides[old_shape.size() - 1];
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = old_shape.size() - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    const bool chunk_ends =
        d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
      strides[view_d] = view_numel * chunk_stride;
      view_numel *= shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return false;
    if (d > 0) {
      chunk_stride = old_strides[d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return false;
  *out = strides;
  return true;
}

Shape resolve_shape(const char* op, const Tensor& t, const Shape& requested) {
  Shape shape = requested;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LATTE_CHECK(infer < 0) << op << ": more than one -1 in " << requested.str();
      infer = i;
    } else {
      LATTE_CHECK(shape[i] >= 0) << op << ": negative size in " << requested.str();
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    LATTE_CHECK(known > 0 && t.numel() % known == 0)
        << op << ": cannot infer -1 in " << requested.str() << " for " << t.describe();
    shape[infer] = t.numel() / known;
  }
  LATTE_CHECK(shape.numel() == t.numel()) << op << ": " << t.describe() << " (" << t.numel()
                                          << " elements) cannot become " << requested.str();
  return shape;
}

Tensor record_view(const char* op, const Tensor& source, Tensor view) {
  const Shape shape = source.shape();
  return record(op, view, {source},
                [shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(shape)}; });
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  const Shape shape = resolve_shape("view", *this, requested);
  Shape strides;
  LATTE_CHECK(view_strides(*this, shape, &strides))
      << "view: " << describe() << " with strides " << this->strides().str()
      << " cannot be viewed as " << shape.str() << " without a copy (use reshape)";
  return record_view("view", *this, make_view(*this, shape, strides, offset()));
}

Tensor Tensor::reshape(const Shape& requested) const {
  const Shape shape = resolve_shape("reshape", *this, requested);
  Shape strides;
  if (view_strides(*this, shape, &strides))
    return record_view("reshape", *this, make_view(*this, shape, strides, offset()));
  return contiguous().view(shape);
}

Tensor Tensor::transpose(int a, int b) const {
  std::vector<int> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[wrap_dim("transpose", a, dim())], order[wrap_dim("transpose", b, dim())]);
  return permute(order);
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  LATTE_CHECK(static_cast<int>(order.size()) == dim())
      << "permute: order has " << order.size() << " entries for " << describe();
  Shape shape, strides;
  std::vector<int> inverse(dim(), -1);
  for (int i = 0; i < dim(); ++i) {
    const int d = wrap_dim("permute", order[i], dim());
    LATTE_CHECK(inverse[d] < 0) << "permute: dimension " << d << " repeated";
    inverse[d] = i;
    shape.push_back(this->shape()[d]);
    strides.push_back(this->strides()[d]);
  }
  Tensor out = make_view(*this, shape, strides, offset());
  return record("permute", out, {*this},
                [inverse](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; });
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  d = wrap_dim("narrow", d, dim());
  LATTE_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d])
      << "narrow: range [" << start << ", " << start + length << ") out of bounds for dimension "
      << d << " of " << describe();
  Shape shape = this->shape();
  shape[d] = length;
  Tensor out = make_view(*this, shape, strides(), offset() + start * strides()[d]);
  return record_window("narrow", out, *this, InputWindow{d, start, this->shape()});
}

Tensor Tensor::select(int d, int64_t index) const {
  d = wrap_dim("select", d, dim());
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int d) const {
  d = wrap_dim("unsqueeze", d, dim() + 1);
  std::vector<int64_t> shape = this->shape().vec();
  shape.insert(shape.begin() + d, 1);
  return reshape(Shape(shape));
}

Tensor Tensor::squeeze(int d) const {
  d = wrap_dim("squeeze", d, dim());
  LATTE_CHECK(shape()[d] == 1) << "squeeze: dimension " << d << " of " << describe() << " is not 1";
  std::vector<int64_t> shape = this->shape().vec();
  shape.erase(shape.begin() + d);
  return reshape(Shape(shape));
}

Tensor Tensor::contiguous() const {
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return record("clone", out, {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  // A view of the values, so that the record below never lands on a parameter's kept copy.
  const Tensor values = detached_cast(target);
  Tensor out = make_view(values, values.shape(), values.strides(), 0);
  if (!is_floating(target)) return out;
  const DType source = dtype();
  return record("to_dtype", out, {*this},
                [source](const Tensor& g) -> std::vector<Tensor> { return {g.to(source)}; });
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_(*this);
  const Device source = device();
  return record("to_device", out, {*this},
                [source](const Tensor& g) -> std::vector<Tensor> { return {g.to(source)}; });
}

namespace ops {

Tensor expand(const Tensor& x, const Shape& shape) {
  const Shape full = detail::broadcast_shapes("expand", x.shape(), shape);
  LATTE_CHECK(full == shape) << "expand: " << x.describe() << " cannot broadcast to "
                             << shape.str();
  Tensor out = Tensor::make_view(x, shape, detail::broadcast_strides(x, shape), x.offset());
  const Shape from = x.shape();
  return record("expand", out, {x},
                [from](const Tensor& g) -> std::vector<Tensor> { return {sum_to(g, from)}; });
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  return expand(x, shape).clone();
}

Tensor concat(const std::vector<Tensor>& parts, int dim) {
  LATTE_CHECK(!parts.empty()) << "concat: no tensors given";
  const Tensor& first = parts[0];
  dim = wrap_dim("concat", dim, first.dim());
  Shape shape = first.shape();
  int64_t total = 0;
  for (const Tensor& p : parts) {
    detail::require_same_dtype("concat", first, p);
    LATTE_CHECK(p.dim() == first.dim())
        << "concat: rank mismatch between " << first.describe() << " and " << p.describe();
    for (int d = 0; d < first.dim(); ++d)
      LATTE_CHECK(d == dim || p.shape()[d] == first.shape()[d])
          << "concat along " << dim << ": " << p.describe() << " does not match "
          << first.describe();
    total += p.shape()[dim];
  }
  shape[dim] = total;
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  int64_t start = 0;
  for (const Tensor& p : parts) {
    Tensor window = Tensor::make_view(out, p.shape(), out.strides(), start * out.strides()[dim]);
    window.copy_(p);
    sizes.push_back(p.shape()[dim]);
    start += p.shape()[dim];
  }
  return record("concat", out, parts, [sizes, dim](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t s = 0;
    for (int64_t n : sizes) {
      grads.push_back(g.narrow(dim, s, n));
      s += n;
    }
    return grads;
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  dim = wrap_dim("split", dim, x.dim());
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  LATTE_CHECK(total == x.shape()[dim]) << "split: sizes add up to " << total << " but dimension "
                                       << dim << " of " << x.describe() << " is " << x.shape()[dim];
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    parts.push_back(x.narrow(dim, start, s));
    start += s;
  }
  return parts;
}

}  // namespace ops
}  // namespace latte
