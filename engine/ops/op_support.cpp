#include "engine/ops/op_support.h"

#include <algorithm>

namespace latte::ops::detail {

void require_defined(const char* op, const Tensor& t) {
  LATTE_CHECK(t.defined()) << op << ": got an undefined tensor";
}

void require_cpu(const char* op, const Tensor& t) {
  LATTE_CHECK(t.defined()) << op << ": got an undefined tensor";
  LATTE_CHECK(t.device() == Device::CPU)
      << op << ": no implementation for " << t.describe() << " on this build";
}

void require_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  LATTE_CHECK(a.dtype() == b.dtype())
      << op << ": dtype mismatch between " << a.describe() << " and " << b.describe();
  LATTE_CHECK(a.device() == b.device())
      << op << ": device mismatch between " << a.describe() << " and " << b.describe();
}

void require_weight_dtype(const char* op, const Tensor& x, const Tensor& weight, const char* what) {
  LATTE_CHECK(weight.dtype() == x.dtype() || weight.dtype() == master_dtype(x.dtype()))
      << op << ": " << what << " " << weight.describe()
      << " must have the input's dtype or its master "
      << "dtype " << dtype_name(master_dtype(x.dtype())) << "; input " << x.describe();
  LATTE_CHECK(weight.device() == x.device())
      << op << ": device mismatch between " << x.describe() << " and " << weight.describe();
}

void require_rank_at_least(const char* op, const Tensor& t, int rank, const char* what) {
  LATTE_CHECK(t.dim() >= rank) << op << ": " << what << " needs at least " << rank
                               << " dimensions, got " << t.describe();
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const int rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (int i = 0; i < rank; ++i) {
    const int ia = a.size() - rank + i, ib = b.size() - rank + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    LATTE_CHECK(da == db || da == 1 || db == 1)
        << op << ": shapes " << a.str() << " and " << b.str() << " cannot be broadcast";
    out[i] = da == 1 ? db : da;
  }
  return Shape(out);
}

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape strides = out;
  const int rank = out.size(), offset = rank - t.dim();
  for (int i = 0; i < rank; ++i) {
    const int it = i - offset;
    strides[i] = (it < 0 || t.shape()[it] == 1) ? 0 : t.strides()[it];
  }
  return strides;
}

int wrap_dim(const char* op, int dim, int rank) {
  LATTE_CHECK(dim >= -rank && dim < rank)
      << op << ": dimension " << dim << " out of range for a rank-" << rank << " tensor";
  return dim < 0 ? dim + rank : dim;
}

}  // namespace latte::ops::detail
