// Flash attention cases: the CUDA forward and backward against the CPU FlashAttention-2 twin on
// packed and strided layouts, GQA, causal with q_len <, = and > kv_len, decode, head dims that are
// and are not multiples of 16 (qk and v independent, up to 256) and lengths that are not
// multiples of any tile.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <type_traits>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cuda/flash_attention.cuh"

namespace latte::test {

namespace {

using kernels::cpu::AttentionLayout;
using kernels::cpu::AttentionProblem;

// Elements written by no kernel keep this value (exact in bf16); comparing whole buffers checks
// that the kernels leave every element outside their layouts alone.
constexpr float kSentinel = 4096.f;

enum class Layout {
  kPacked,   // [batch, tokens, heads, dim]
  kStrided,  // q rows padded, k and v interleaved in one buffer, o head-major
};

struct Shape {
  int64_t batch, q_heads, kv_heads, q_len, kv_len, qk_dim, v_dim;
  bool causal;
  Layout layout;
};

// One operand: its layout and the element offset of its first element in its buffer.
struct Operand {
  AttentionLayout layout;
  int64_t offset = 0, tokens = 0, heads = 0, dim = 0;

  int64_t end() const {
    return offset + (tokens - 1) * layout.token_stride + (heads - 1) * layout.head_stride + dim;
  }
};

struct Operands {
  Operand q, k, v, o;
  int64_t q_size, kv_size, o_size;  // buffer sizes; k and v each get a kv_size buffer
};

Operands make_operands(const Shape& s) {
  Operands x;
  x.q = {{}, 0, s.q_len, s.q_heads, s.qk_dim};
  x.k = {{}, 0, s.kv_len, s.kv_heads, s.qk_dim};
  x.v = {{}, 0, s.kv_len, s.kv_heads, s.v_dim};
  x.o = {{}, 0, s.q_len, s.q_heads, s.v_dim};
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
  auto size = [&](const Operand& op) { return (s.batch - 1) * op.layout.batch_stride + op.end(); };
  x.q_size = size(x.q);
  x.kv_size = std::max(size(x.k), size(x.v));
  x.o_size = size(x.o);
  return x;
}

// Writes Uniform(-1, 1) values at every element of `op` in `buffer`.
void fill_operand(std::mt19937& rng, std::vector<float>& buffer, const Operand& op, int64_t batch) {
  const std::vector<float> values = uniform(rng, batch * op.tokens * op.heads * op.dim);
  size_t next = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < op.tokens; ++t)
      for (int64_t h = 0; h < op.heads; ++h)
        for (int64_t c = 0; c < op.dim; ++c)
          buffer[op.offset + b * op.layout.batch_stride + t * op.layout.token_stride +
                 h * op.layout.head_stride + c] = values[next++];
}

// The largest |x_i| over the elements that are not the sentinel: the tensor's scale.
double scale_of(const std::vector<float>& x) {
  double m = 0;
  for (float v : x)
    if (v != kSentinel) m = std::max(m, std::abs(static_cast<double>(v)));
  return m;
}

// Tolerances, relative to the element and (as atol) to the tensor's scale.
// float: the same math in fp32 in another summation order (BLAS vs the CUDA tiles) and exp2 vs
// exp: 1e-4.
// bf16: inputs are rounded alike on both sides, but the kernel rounds the probabilities (and, in
// the backward pass, d scores) to bf16 (2^-8 relative each) before the tensor-core products and
// rounds its outputs once more: 1% for o, 2% for the gradients, which sum many such terms. The
// logsumexp sums fp32 exponentials of fp32 scores, no bf16 rounding of its own: 1e-4.
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

  // In the strided layout k and v live in one buffer.
  const bool shared_kv = s.layout == Layout::kStrided;
  std::vector<float> q(x.q_size, kSentinel), k(x.kv_size, kSentinel), v_own(x.kv_size, kSentinel),
      d_o(x.o_size, kSentinel);
  std::vector<float>& v = shared_kv ? k : v_own;
  fill_operand(rng, q, x.q, s.batch);
  fill_operand(rng, k, x.k, s.batch);
  fill_operand(rng, v, x.v, s.batch);
  fill_operand(rng, d_o, x.o, s.batch);
  if (Tol::kBf16) {
    q = round_bf16(q), k = round_bf16(k), d_o = round_bf16(d_o);
    if (!shared_kv) v = round_bf16(v);
  }

  // ---- forward ----
  std::vector<float> o_ref(x.o_size, kSentinel), lse_ref(s.batch * s.q_heads * s.q_len);
  kernels::cpu::flash_attention_forward<float>(p, q.data() + x.q.offset, k.data() + x.k.offset,
                                               v.data() + x.v.offset, o_ref.data() + x.o.offset,
                                               lse_ref.data());
  const cudaStream_t stream = cuda::stream();
  DeviceBuffer<T> gq(as_type<T>(q)), gk(as_type<T>(k)), gv(as_type<T>(v));
  DeviceBuffer<T> go(as_type<T>(std::vector<float>(x.o_size, kSentinel)));
  DeviceBuffer<float> glse(lse_ref.size());
  kernels::cuda::flash_attention_forward<T>(p, gq.get() + x.q.offset, gk.get() + x.k.offset,
                                            gv.get() + x.v.offset, go.get() + x.o.offset,
                                            glse.get(), stream);
  checks.expect(
      "o", mismatch_report(as_float(go.download()), o_ref, Tol::kOut, Tol::kOut * scale_of(o_ref)));
  checks.expect("lse", mismatch_report(glse.download(), lse_ref, Tol::kLse, Tol::kLse));

  // ---- backward, both sides from the CPU's o (in the kernel's type) and lse ----
  const std::vector<float> o_in = Tol::kBf16 ? round_bf16(o_ref) : o_ref;
  std::vector<float> dq_ref(x.q_size, kSentinel), dk_ref(x.kv_size, kSentinel),
      dv_ref(x.kv_size, kSentinel);
  kernels::cpu::flash_attention_backward<float>(
      p, q.data() + x.q.offset, k.data() + x.k.offset, v.data() + x.v.offset,
      o_in.data() + x.o.offset, d_o.data() + x.o.offset, lse_ref.data(), dq_ref.data() + x.q.offset,
      dk_ref.data() + x.k.offset, dv_ref.data() + x.v.offset);
  DeviceBuffer<T> go_in(as_type<T>(o_in)), gd_o(as_type<T>(d_o));
  DeviceBuffer<float> glse_in(lse_ref);
  DeviceBuffer<T> gdq(as_type<T>(std::vector<float>(x.q_size, kSentinel)));
  DeviceBuffer<T> gdk(as_type<T>(std::vector<float>(x.kv_size, kSentinel)));
  DeviceBuffer<T> gdv(as_type<T>(std::vector<float>(x.kv_size, kSentinel)));
  DeviceBuffer<float> workspace(kernels::cuda::flash_attention_backward_workspace(p));
  kernels::cuda::flash_attention_backward<T>(
      p, gq.get() + x.q.offset, gk.get() + x.k.offset, gv.get() + x.v.offset,
      go_in.get() + x.o.offset, gd_o.get() + x.o.offset, glse_in.get(), gdq.get() + x.q.offset,
      gdk.get() + x.k.offset, gdv.get() + x.v.offset, workspace.get(), stream);
  checks.expect("dq", mismatch_report(as_float(gdq.download()), dq_ref, Tol::kGrad,
                                      Tol::kGrad * scale_of(dq_ref)));
  checks.expect("dk", mismatch_report(as_float(gdk.download()), dk_ref, Tol::kGrad,
                                      Tol::kGrad * scale_of(dk_ref)));
  checks.expect("dv", mismatch_report(as_float(gdv.download()), dv_ref, Tol::kGrad,
                                      Tol::kGrad * scale_of(dv_ref)));
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
      {1, 2, 2, 70, 70, 192, 128, true, S},  // DeepSeek MLA head dims
      {1, 2, 2, 40, 40, 256, 256, true, P},
      {1, 2, 2, 41, 57, 256, 16, false, S},
      {1, 3, 3, 50, 50, 20, 36, true, S},  // dims that are not multiples of 16
  };
  std::vector<KernelCase> cases;
  unsigned seed = 100;
  for (const Shape& s : shapes) {
    cases.push_back(
        {describe(s, "f32"), [s, seed](Checks& c) { run_attention<float>(s, seed, c); }});
    cases.push_back(
        {describe(s, "bf16"), [s, seed](Checks& c) { run_attention<bf16>(s, seed, c); }});
    ++seed;
  }
  return cases;
}

}  // namespace latte::test
