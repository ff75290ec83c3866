// Flash attention cases: the CUDA forward and backward against the CPU FlashAttention-2 twin on
// packed and strided layouts, GQA, causal with q_len <, = and > kv_len, decode, head dims that are
// and are not multiples of 16 (qk and v independent, up to 256) and lengths that are not
// multiples of any tile.
#include <cmath>
#include <sstream>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cuda/flash_attention.cuh"

namespace latte::test {

namespace {

using kernels::cpu::AttentionLayout;
using kernels::cpu::AttentionProblem;

// Elements written by no kernel keep this value; comparing whole buffers checks that the kernels
// leave every element outside their layouts alone.
constexpr float kSentinel = 7777.f;

enum class Layout {
  kPacked,   // [batch, tokens, heads, dim]
  kStrided,  // q rows padded, k and v interleaved per token, o head-major [batch, heads, tokens]
};

struct Shape {
  int64_t batch, q_heads, kv_heads, q_len, kv_len, qk_dim, v_dim;
  bool causal;
  Layout layout;
};

// One operand: its layout, the element offset of its first element and its buffer size.
struct Operand {
  AttentionLayout layout;
  int64_t offset = 0, size = 0;
};

int64_t extent(const AttentionLayout& l, int64_t batch, int64_t tokens, int64_t heads,
               int64_t dim) {
  return (batch - 1) * l.batch_stride + (tokens - 1) * l.token_stride +
         (heads - 1) * l.head_stride + dim;
}

struct Operands {
  Operand q, k, v, o;
};

Operands make_operands(const Shape& s) {
  Operands x;
  if (s.layout == Layout::kPacked) {
    x.q.layout = kernels::cpu::packed_attention_layout(s.q_len, s.q_heads, s.qk_dim);
    x.k.layout = kernels::cpu::packed_attention_layout(s.kv_len, s.kv_heads, s.qk_dim);
    x.v.layout = kernels::cpu::packed_attention_layout(s.kv_len, s.kv_heads, s.v_dim);
    x.o.layout = kernels::cpu::packed_attention_layout(s.q_len, s.q_heads, s.v_dim);
  } else {
    const int64_t q_row = s.qk_dim + 8, kv_row = s.qk_dim + s.v_dim;
    x.q.layout = {s.q_len * s.q_heads * q_row, s.q_heads * q_row, q_row};
    x.k.layout = {s.kv_len * s.kv_heads * kv_row, s.kv_heads * kv_row, kv_row};
    x.v.layout = x.k.layout;
    x.v.offset = s.qk_dim;  // v follows k in each (token, head) row
    x.o.layout = {s.q_heads * s.q_len * s.v_dim, s.v_dim, s.q_len * s.v_dim};
  }
  x.q.size = x.q.offset + extent(x.q.layout, s.batch, s.q_len, s.q_heads, s.qk_dim);
  x.k.size = x.k.offset + extent(x.k.layout, s.batch, s.kv_len, s.kv_heads, s.qk_dim);
  x.v.size = x.v.offset + extent(x.v.layout, s.batch, s.kv_len, s.kv_heads, s.v_dim);
  x.o.size = x.o.offset + extent(x.o.layout, s.batch, s.q_len, s.q_heads, s.v_dim);
  return x;
}

// Host data of an operand: random at its elements, the sentinel elsewhere (padding, the other
// operand of an interleaved buffer).
std::vector<float> random_operand(std::mt19937& rng, const Operand& x, const Shape& s,
                                  int64_t tokens, int64_t heads, int64_t dim) {
  std::vector<float> data(x.size, kSentinel);
  const std::vector<float> values = uniform(rng, s.batch * tokens * heads * dim);
  size_t next = 0;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t c = 0; c < dim; ++c)
          data[x.offset + b * x.layout.batch_stride + t * x.layout.token_stride +
               h * x.layout.head_stride + c] = values[next++];
  return data;
}

// Host vectors in the kernel's element type T.
template <typename T>
std::vector<T> as(const std::vector<float>& x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return to_bf16(x);
}
template <typename T>
std::vector<float> back(const std::vector<T>& x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return to_float(x);
}

// Tolerances. float: the same math in fp32 in a different summation order (BLAS vs the CUDA
// tiles) and exp2 vs exp; 1e-4 relative to the element and to the tensor's scale.
// bf16: inputs are rounded alike on both sides, but the kernel rounds the probabilities (and, in
// the backward pass, d scores) to bf16 (2^-8 relative each) before the tensor-core products and
// rounds its outputs once more: about 1% of the tensor's scale for o, 2% for the gradients,
// which sum many such terms. lse never sees a bf16 rounding of its own (fp32 sums): 1e-4.
template <typename T>
struct AttentionTolerance {
  static constexpr bool kBf16 = !std::is_same_v<T, float>;
  static constexpr double kOut = kBf16 ? 1e-2 : 1e-4;
  static constexpr double kGrad = kBf16 ? 2e-2 : 1e-4;
  static constexpr double kLse = 1e-4;
};

template <typename T>
void run_attention(const Shape& s, unsigned seed, Checks& checks) {
  using Tol = AttentionTolerance<T>;
  std::mt19937 rng(seed);
  const Operands x = make_operands(s);
  AttentionProblem p;
  p.batch = s.batch, p.q_heads = s.q_heads, p.kv_heads = s.kv_heads;
  p.q_len = s.q_len, p.kv_len = s.kv_len, p.qk_dim = s.qk_dim, p.v_dim = s.v_dim;
  p.scale = 1.0 / std::sqrt(static_cast<double>(s.qk_dim));
  p.causal = s.causal;
  p.q = x.q.layout, p.k = x.k.layout, p.v = x.v.layout, p.o = x.o.layout;

  // k and v share one buffer in the strided layout.
  const bool shared_kv = s.layout == Layout::kStrided;
  std::vector<float> q = random_operand(rng, x.q, s, s.q_len, s.q_heads, s.qk_dim);
  std::vector<float> k = random_operand(rng, x.k, s, s.kv_len, s.kv_heads, s.qk_dim);
  std::vector<float> v = random_operand(rng, x.v, s, s.kv_len, s.kv_heads, s.v_dim);
  if (shared_kv)
    for (size_t i = 0; i < k.size(); ++i)
      if (v[i] == kSentinel) v[i] = k[i];  // one buffer holding both
  if (shared_kv) k = v;
  std::vector<float> d_o = random_operand(rng, x.o, s, s.q_len, s.q_heads, s.v_dim);
  if (Tol::kBf16) {
    q = round_bf16(q), k = round_bf16(k), v = round_bf16(v), d_o = round_bf16(d_o);
  }
  const float* kv_k = k.data();
  const float* kv_v = shared_kv ? k.data() : v.data();

  // ---- forward ----
  std::vector<float> o_ref(x.o.size, kSentinel), lse_ref(s.batch * s.q_heads * s.q_len);
  kernels::cpu::flash_attention_forward<float>(p, q.data() + x.q.offset, kv_k + x.k.offset,
                                               kv_v + x.v.offset, o_ref.data() + x.o.offset,
                                               lse_ref.data());
  const cudaStream_t stream = cuda::stream();
  DeviceBuffer<T> dq_in(as<T>(q)), dk_in(as<T>(k)), dv_in(as<T>(shared_kv ? k : v));
  DeviceBuffer<T> d_out(as<T>(std::vector<float>(x.o.size, kSentinel)));
  DeviceBuffer<float> d_lse(lse_ref.size());
  kernels::cuda::flash_attention_forward<T>(p, dq_in.get() + x.q.offset, dk_in.get() + x.k.offset,
                                            dv_in.get() + x.v.offset, d_out.get() + x.o.offset,
                                            d_lse.get(), stream);
  checks.expect("o", mismatch(back(d_out.download()), o_ref, Tol::kOut,
                              Tol::kOut * max_abs(v)));
  checks.expect("lse", mismatch(d_lse.download(), lse_ref, Tol::kLse, Tol::kLse));

  // ---- backward, both sides from the CPU's o (as the kernel type) and lse ----
  const std::vector<float> o_in = Tol::kBf16 ? round_bf16(o_ref) : o_ref;
  std::vector<float> dq_ref(x.q.size, kSentinel), dk_ref(x.k.size, kSentinel),
      dv_ref(x.v.size, kSentinel);
  kernels::cpu::flash_attention_backward<float>(
      p, q.data() + x.q.offset, kv_k + x.k.offset, kv_v + x.v.offset, o_in.data() + x.o.offset,
      d_o.data() + x.o.offset, lse_ref.data(), dq_ref.data() + x.q.offset,
      dk_ref.data() + x.k.offset, dv_ref.data() + x.v.offset);
  DeviceBuffer<T> d_o_in(as<T>(o_in)), d_grad_out(as<T>(d_o));
  DeviceBuffer<float> d_lse_in(lse_ref);
  DeviceBuffer<T> d_dq(as<T>(std::vector<float>(x.q.size, kSentinel)));
  DeviceBuffer<T> d_dk(as<T>(std::vector<float>(x.k.size, kSentinel)));
  DeviceBuffer<T> d_dv(as<T>(std::vector<float>(x.v.size, kSentinel)));
  DeviceBuffer<float> workspace(kernels::cuda::flash_attention_backward_workspace(p));
  kernels::cuda::flash_attention_backward<T>(
      p, dq_in.get() + x.q.offset, dk_in.get() + x.k.offset, dv_in.get() + x.v.offset,
      d_o_in.get() + x.o.offset, d_grad_out.get() + x.o.offset, d_lse_in.get(),
      d_dq.get() + x.q.offset, d_dk.get() + x.k.offset, d_dv.get() + x.v.offset, workspace.get(),
      stream);
  for (auto [name, got, want] :
       {std::tuple{"dq", &d_dq, &dq_ref}, std::tuple{"dk", &d_dk, &dk_ref},
        std::tuple{"dv", &d_dv, &dv_ref}}) {
    double scale = 0;
    for (float w : *want)
      if (w != kSentinel) scale = std::max(scale, static_cast<double>(std::abs(w)));
    checks.expect(name, mismatch(back(got->download()), *want, Tol::kGrad, Tol::kGrad * scale));
  }
}

std::string describe(const Shape& s, const char* type) {
  std::ostringstream out;
  out << "flash_attention " << type << " B" << s.batch << " H" << s.q_heads << "/" << s.kv_heads
      << " T" << s.q_len << "/" << s.kv_len << " d(" << s.qk_dim << "," << s.v_dim << ")"
      << (s.causal ? " causal" : "") << (s.layout == Layout::kStrided ? " strided" : "");
  return out.str();
}

}  // namespace

std::vector<KernelCase> attention_cases() {
  constexpr Layout P = Layout::kPacked, S = Layout::kStrided;
  const std::vector<Shape> shapes = {
      {2, 4, 4, 64, 64, 64, 64, false, P},
      {1, 8, 2, 77, 77, 48, 32, true, S},     // GQA, tiles cut mid-way
      {2, 4, 1, 33, 130, 16, 16, true, S},    // q_len < kv_len (chunked prefill)
      {1, 2, 2, 100, 37, 32, 48, true, P},    // q_len > kv_len: early rows see no key
      {1, 4, 2, 1, 1000, 192, 128, true, S},  // decode, long kv
      {2, 2, 2, 1, 300, 64, 64, false, P},    // decode, non-causal
      {1, 3, 3, 65, 65, 96, 96, true, P},
      {1, 2, 1, 129, 129, 128, 128, true, S},
      {1, 2, 2, 70, 70, 192, 128, true, S},   // DeepSeek MLA head dims
      {1, 2, 2, 40, 40, 256, 256, true, P},
      {1, 2, 2, 41, 57, 256, 16, false, S},
      {1, 3, 3, 50, 50, 20, 36, true, S},     // dims that are not multiples of 16
  };
  std::vector<KernelCase> cases;
  unsigned seed = 100;
  for (const Shape& s : shapes) {
    cases.push_back({describe(s, "f32"), [s, seed](Checks& c) { run_attention<float>(s, seed, c); }});
    cases.push_back({describe(s, "bf16"), [s, seed](Checks& c) { run_attention<bf16>(s, seed, c); }});
    ++seed;
  }
  return cases;
}

}  // namespace latte::test
