// Differentiable elementwise ops and reductions (engine/ops.h) over kernels/cpu/elementwise.h.
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "kernels/cpu/elementwise.h"

namespace latte::ops {

using detail::require_cpu;
using detail::saved;
namespace k = kernels::cpu;

namespace {

Tensor binary(const char* op, k::BinaryOp kind, const Tensor& a, const Tensor& b) {
  require_cpu(op, a);
  require_cpu(op, b);
  detail::require_same_dtype(op, a, b);
  const Shape out_shape = detail::broadcast_shapes(op, a.shape(), b.shape());
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const Shape sa = detail::broadcast_strides(a, out_shape);
  const Shape sb = detail::broadcast_strides(b, out_shape);
  visit_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::binary_op<T>(kind, out_shape.begin(), out_shape.size(), a.data<T>(), sa.begin(), b.data<T>(),
                    sb.begin(), out.data<T>());
  });
  return out;
}

// Applies a unary kernel to a contiguous copy of x.
template <typename Kernel>
Tensor unary(const char* op, const Tensor& x, Kernel kernel) {
  require_cpu(op, x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  visit_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernel(xc.data<T>(), out.data<T>(), x.numel());
  });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary("add", k::BinaryOp::kAdd, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  return record("add", out, {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary("sub", k::BinaryOp::kSub, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  return record("sub", out, {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), scale(sum_to(g, sb), -1.0)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary("mul", k::BinaryOp::kMul, a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(
      "mul", out, {a, b},
      [sa = saved(a), sb = saved(b), need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
        return {need_a ? sum_to(mul(g, sb), sa.shape()) : Tensor(),
                need_b ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
      });
}

Tensor scale(const Tensor& x, double s) {
  Tensor out = unary("scale", x, [s](auto* in, auto* o, int64_t n) {
    using T = std::remove_cvref_t<decltype(*o)>;
    k::scale<T>(in, o, n, static_cast<T>(s));
  });
  return record("scale", out, {x},
                [s](const Tensor& g) -> std::vector<Tensor> { return {scale(g, s)}; });
}

Tensor silu(const Tensor& x) {
  Tensor out = unary("silu", x, [](auto* in, auto* o, int64_t n) { k::silu_forward(in, o, n); });
  return record("silu", out, {x}, [sx = saved(x)](const Tensor& g) -> std::vector<Tensor> {
    const Tensor xc = sx.contiguous(), gc = g.contiguous();
    Tensor dx = Tensor::empty(xc.shape(), xc.dtype());
    visit_float(xc.dtype(), "silu backward", [&](auto tag) {
      using T = decltype(tag);
      k::silu_backward(xc.data<T>(), gc.data<T>(), dx.data<T>(), xc.numel());
    });
    return {dx};
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out =
      unary("sigmoid", x, [](auto* in, auto* o, int64_t n) { k::sigmoid_forward(in, o, n); });
  return record("sigmoid", out, {x}, [sy = saved(out)](const Tensor& g) -> std::vector<Tensor> {
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(sy.shape(), sy.dtype());
    visit_float(sy.dtype(), "sigmoid backward", [&](auto tag) {
      using T = decltype(tag);
      k::sigmoid_backward(sy.data<T>(), gc.data<T>(), dx.data<T>(), sy.numel());
    });
    return {dx};
  });
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  require_cpu("swiglu", gate);
  require_cpu("swiglu", up);
  detail::require_same_dtype("swiglu", gate, up);
  LATTE_CHECK(gate.shape() == up.shape())
      << "swiglu: gate " << gate.describe() << " and up " << up.describe() << " differ in shape";
  const Tensor gc = gate.contiguous(), uc = up.contiguous();
  Tensor out = Tensor::empty(gate.shape(), gate.dtype());
  visit_float(gate.dtype(), "swiglu", [&](auto tag) {
    using T = decltype(tag);
    k::swiglu_forward(gc.data<T>(), uc.data<T>(), out.data<T>(), out.numel());
  });
  return record("swiglu", out, {gate, up},
                [sg = saved(gc), su = saved(uc)](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor dy = g.contiguous();
                  Tensor dgate = Tensor::empty(sg.shape(), sg.dtype());
                  Tensor dup = Tensor::empty(sg.shape(), sg.dtype());
                  visit_float(sg.dtype(), "swiglu backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::swiglu_backward(sg.data<T>(), su.data<T>(), dy.data<T>(), dgate.data<T>(),
                                       dup.data<T>(), sg.numel());
                  });
                  return {dgate, dup};
                });
}

void add_(Tensor& dst, const Tensor& src) {
  require_cpu("add_", dst);
  require_cpu("add_", src);
  detail::require_same_dtype("add_", dst, src);
  LATTE_CHECK(dst.shape() == src.shape())
      << "add_: " << src.describe() << " cannot be added into " << dst.describe();
  LATTE_CHECK(dst.is_contiguous()) << "add_: destination must be contiguous, got a view";
  const Tensor sc = src.contiguous();
  visit_float(dst.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    k::add_inplace(dst.data<T>(), sc.data<T>(), dst.numel());
  });
}

Tensor sum(const Tensor& x) {
  require_cpu("sum", x);
  const Tensor xc = x.contiguous();
  const double total = visit_float(x.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    return k::sum_all(xc.data<T>(), xc.numel());
  });
  Tensor out = Tensor::scalar(total, x.dtype());
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
  require_cpu("sum_to", x);
  const Shape full = detail::broadcast_shapes("sum_to", x.shape(), shape);
  LATTE_CHECK(full == x.shape()) << "sum_to: " << x.describe() << " does not broadcast from "
                                 << shape.str();
  Tensor out = Tensor::empty(shape, x.dtype());
  const Shape out_strides = detail::broadcast_strides(out, full);
  const Tensor xc = x.contiguous();
  visit_float(x.dtype(), "sum_to", [&](auto tag) {
    using T = decltype(tag);
    k::sum_to(xc.data<T>(), full.begin(), full.size(), out.data<T>(), out_strides.begin(),
              out.numel());
  });
  const Shape from = x.shape();
  return record("sum_to", out, {x},
                [from](const Tensor& g) -> std::vector<Tensor> { return {broadcast_to(g, from)}; });
}

}  // namespace latte::ops
