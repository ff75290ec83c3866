#include "kernels/cuda/naive_attention.cuh"

#include <algorithm>

#include "kernels/cuda/attention_softmax.cuh"

namespace latte::kernels::cuda {

namespace {

// The leading dimension cuBLAS is given for a [rows, cols] matrix whose rows are `stride` apart.
// With a single row the stride is never used, but cuBLAS still requires ld >= cols.
int64_t leading_dim(int64_t stride, int64_t cols) {
  return std::max(stride, cols);
}

// One operand of the GEMMs of a (batch, group position) step: the matrix of the step's first kv
// head, its leading dimension and the stride to the next kv head's matrix.
template <typename P>
struct Matrices {
  P* first;
  int64_t ld, stride;
};

// Addresses the matrices of the query heads at position j of their GQA groups in batch b (q, o,
// d_o and their probabilities), and those of the kv heads in batch b (k, v).
class Steps {
 public:
  explicit Steps(const cpu::AttentionProblem& p) : p_(p), group_(p.group_size()) {}

  template <typename T>
  Matrices<T> query(T* base, const cpu::AttentionLayout& l, int64_t dim, int64_t b,
                    int64_t j) const {
    return {base + b * l.batch_stride + j * l.head_stride, leading_dim(l.token_stride, dim),
            group_ * l.head_stride};
  }
  template <typename T>
  Matrices<T> kv(T* base, const cpu::AttentionLayout& l, int64_t dim, int64_t b) const {
    return {base + b * l.batch_stride, leading_dim(l.token_stride, dim), l.head_stride};
  }
  template <typename T>
  Matrices<T> probs(T* base, int64_t b, int64_t j) const {
    return {base + (b * p_.q_heads + j) * matrix(), p_.kv_len, group_ * matrix()};
  }
  int64_t matrix() const { return p_.q_len * p_.kv_len; }

 private:
  const cpu::AttentionProblem& p_;
  int64_t group_;
};

// c = alpha op(a) op(b) + beta c for every kv head of a step.
template <typename T>
void gemm_heads(const BlasHandles& h, cudaStream_t stream, int64_t heads, bool trans_a,
                bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const Matrices<const T>& a, const Matrices<const T>& b, float beta,
                const Matrices<T>& c) {
  gemm_batched<T>(h, stream, trans_a, trans_b, heads, m, n, k, alpha, a.first, a.ld, a.stride,
                  b.first, b.ld, b.stride, beta, c.first, c.ld, c.stride);
}

template <typename T>
Matrices<const T> read_only(const Matrices<T>& m) {
  return {m.first, m.ld, m.stride};
}

}  // namespace

template <typename T>
void naive_attention_forward(const BlasHandles& h, const cpu::AttentionProblem& p, const T* q,
                             const T* k, const T* v, T* o, T* probs, cudaStream_t stream) {
  cpu::check_attention_problem(p, "cuda naive_attention_forward");
  const Steps s(p);
  const int64_t group = p.group_size(), heads = p.kv_heads;
  // scores = q k^T (the softmax applies the scale)
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t j = 0; j < group; ++j)
      gemm_heads<T>(h, stream, heads, false, true, p.q_len, p.kv_len, p.qk_dim, 1.f,
                    s.query(q, p.q, p.qk_dim, b, j), s.kv(k, p.k, p.qk_dim, b), 0.f,
                    s.probs(probs, b, j));
  attention_softmax_forward(p, probs, p.batch * p.q_heads, s.matrix(), stream);
  // o = probs v
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t j = 0; j < group; ++j)
      gemm_heads<T>(h, stream, heads, false, false, p.q_len, p.v_dim, p.kv_len, 1.f,
                    read_only(s.probs(probs, b, j)), s.kv(v, p.v, p.v_dim, b), 0.f,
                    s.query(o, p.o, p.v_dim, b, j));
}

int64_t naive_attention_backward_workspace(const cpu::AttentionProblem& p) {
  return p.kv_heads * p.q_len * p.kv_len;
}

template <typename T>
void naive_attention_backward(const BlasHandles& h, const cpu::AttentionProblem& p, const T* q,
                              const T* k, const T* v, const T* probs, const T* d_o, T* dq, T* dk,
                              T* dv, T* workspace, cudaStream_t stream) {
  cpu::check_attention_problem(p, "cuda naive_attention_backward");
  const Steps s(p);
  const int64_t group = p.group_size(), heads = p.kv_heads;
  const float scale = static_cast<float>(p.scale);
  // d_probs, then d_scores in place, of the step's query heads: one [q_len, kv_len] per kv head.
  const Matrices<T> ds{workspace, p.kv_len, s.matrix()};
  for (int64_t b = 0; b < p.batch; ++b) {
    const Matrices<T> dk_b = s.kv(dk, p.k, p.qk_dim, b), dv_b = s.kv(dv, p.v, p.v_dim, b);
    for (int64_t j = 0; j < group; ++j) {
      const float beta = j == 0 ? 0.f : 1.f;  // the group's first head overwrites dk and dv
      const Matrices<const T> probs_bj = s.probs(probs, b, j);
      const Matrices<const T> d_o_bj = s.query(d_o, p.o, p.v_dim, b, j);
      // dv += probs^T d_o;  d_probs = d_o v^T
      gemm_heads<T>(h, stream, heads, true, false, p.kv_len, p.v_dim, p.q_len, 1.f, probs_bj,
                    d_o_bj, beta, dv_b);
      gemm_heads<T>(h, stream, heads, false, true, p.q_len, p.kv_len, p.v_dim, 1.f, d_o_bj,
                    s.kv(v, p.v, p.v_dim, b), 0.f, ds);
      // d_scores = probs * (d_probs - rowsum(probs * d_probs))
      attention_softmax_backward(p, probs_bj.first, ds.first, heads, probs_bj.stride, ds.stride,
                                 stream);
      // dq = scale d_scores k;  dk += scale d_scores^T q
      gemm_heads<T>(h, stream, heads, false, false, p.q_len, p.qk_dim, p.kv_len, scale,
                    read_only(ds), s.kv(k, p.k, p.qk_dim, b), 0.f,
                    s.query(dq, p.q, p.qk_dim, b, j));
      gemm_heads<T>(h, stream, heads, true, false, p.kv_len, p.qk_dim, p.q_len, scale,
                    read_only(ds), s.query(q, p.q, p.qk_dim, b, j), beta, dk_b);
    }
  }
}

#define LATTE_NAIVE_ATTENTION(T)                                                                  \
  template void naive_attention_forward<T>(const BlasHandles&, const cpu::AttentionProblem&,      \
                                           const T*, const T*, const T*, T*, T*, cudaStream_t);   \
  template void naive_attention_backward<T>(const BlasHandles&, const cpu::AttentionProblem&,     \
                                            const T*, const T*, const T*, const T*, const T*, T*, \
                                            T*, T*, T*, cudaStream_t);
LATTE_NAIVE_ATTENTION(float)
LATTE_NAIVE_ATTENTION(latte::bf16)
#undef LATTE_NAIVE_ATTENTION

}  // namespace latte::kernels::cuda
