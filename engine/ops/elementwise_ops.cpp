// Differentiable elementwise ops and reductions (engine/ops.h); the operands' device runs the
// kernels (engine/backend/elementwise_kernels.h).
#include "engine/backend/elementwise_kernels.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"

namespace latte::ops {

using detail::require_defined;
using detail::saved;

namespace {

const ElementwiseKernels& kernels(const Tensor& t) {
  return elementwise_kernels(t.device());
}

Tensor binary(const char* op, BinaryOp kind, const Tensor& a, const Tensor& b) {
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined(op, a);
  require_defined(op, b);
  detail::require_same_dtype(op, a, b);
  const Shape out_shape = detail::broadcast_shapes(op, a.shape(), b.shape());
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  kernels(a).binary(kind, out_shape, a, detail::broadcast_strides(a, out_shape), b,
                    detail::broadcast_strides(b, out_shape), out);
  return out;
}

// y = kernel(contiguous x), same shape.
template <typename Kernel>
Tensor unary(const char* op, const Tensor& x, Kernel kernel) {
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined(op, x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernel(kernels(x), xc, out);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary("add", BinaryOp::kAdd, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  return record("add", out, {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary("sub", BinaryOp::kSub, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  return record("sub", out, {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), scale(sum_to(g, sb), -1.0)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary("mul", BinaryOp::kMul, a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(
      "mul", out, {a, b},
      [sa = saved(a), sb = saved(b), need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
        return {need_a ? sum_to(mul(g, sb), sa.shape()) : Tensor(),
                need_b ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
      });
}

Tensor scale(const Tensor& x, double s) {
  Tensor out = unary(
      "scale", x,
      [s](const ElementwiseKernels& kt, const Tensor& in, const Tensor& o) { kt.scale(in, s, o); });
  return record("scale", out, {x},
                [s](const Tensor& g) -> std::vector<Tensor> { return {scale(g, s)}; });
}

Tensor silu(const Tensor& x) {
  Tensor out =
      unary("silu", x, [](const ElementwiseKernels& kt, const Tensor& in, const Tensor& o) {
        kt.silu_forward(in, o);
      });
  return record("silu", out, {x}, [sx = saved(x)](const Tensor& g) -> std::vector<Tensor> {
    profiler::Scope timing(profiler::Category::kElementwise);
    const Tensor xc = sx.contiguous(), gc = g.contiguous();
    Tensor dx = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
    kernels(xc).silu_backward(xc, gc, dx);
    return {dx};
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out =
      unary("sigmoid", x, [](const ElementwiseKernels& kt, const Tensor& in, const Tensor& o) {
        kt.sigmoid_forward(in, o);
      });
  return record("sigmoid", out, {x}, [sy = saved(out)](const Tensor& g) -> std::vector<Tensor> {
    profiler::Scope timing(profiler::Category::kElementwise);
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(sy.shape(), sy.dtype(), sy.device());
    kernels(sy).sigmoid_backward(sy, gc, dx);
    return {dx};
  });
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined("swiglu", gate);
  require_defined("swiglu", up);
  detail::require_same_dtype("swiglu", gate, up);
  LATTE_CHECK(gate.shape() == up.shape())
      << "swiglu: gate " << gate.describe() << " and up " << up.describe() << " differ in shape";
  const Tensor gc = gate.contiguous(), uc = up.contiguous();
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
  kernels(gc).swiglu_forward(gc, uc, out);
  return record("swiglu", out, {gate, up},
                [sg = saved(gc), su = saved(uc)](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kElementwise);
                  const Tensor dy = g.contiguous();
                  Tensor dgate = Tensor::empty(sg.shape(), sg.dtype(), sg.device());
                  Tensor dup = Tensor::empty(sg.shape(), sg.dtype(), sg.device());
                  kernels(sg).swiglu_backward(sg, su, dy, dgate, dup);
                  return {dgate, dup};
                });
}

void add_(Tensor& dst, const Tensor& src) {
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined("add_", dst);
  require_defined("add_", src);
  detail::require_same_dtype("add_", dst, src);
  LATTE_CHECK(dst.shape() == src.shape())
      << "add_: " << src.describe() << " cannot be added into " << dst.describe();
  LATTE_CHECK(dst.is_contiguous()) << "add_: destination must be contiguous, got a view";
  kernels(dst).add_inplace(dst, src.contiguous());
}

Tensor sum(const Tensor& x) {
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined("sum", x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(Shape{}, x.dtype(), x.device());
  kernels(x).sum_all(xc, out);
  const Shape shape = x.shape();
  return record("sum", out, {x}, [shape](const Tensor& g) -> std::vector<Tensor> {
    return {broadcast_to(g, shape)};  // d sum / dx = 1 everywhere
  });
}

Tensor mean(const Tensor& x) {
  LATTE_CHECK(x.numel() > 0) << "mean: empty tensor " << x.describe();
  return scale(sum(x), 1.0 / static_cast<double>(x.numel()));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined("sum_to", x);
  const Shape full = detail::broadcast_shapes("sum_to", x.shape(), shape);
  LATTE_CHECK(full == x.shape()) << "sum_to: " << x.describe() << " does not broadcast from "
                                 << shape.str();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  kernels(x).sum_to(x.contiguous(), full, out, detail::broadcast_strides(out, full));
  const Shape from = x.shape();
  return record("sum_to", out, {x},
                [from](const Tensor& g) -> std::vector<Tensor> { return {broadcast_to(g, from)}; });
}

}  // namespace latte::ops
