// Attention cases: the CUDA flash forward and backward against the CPU FlashAttention-2 twin, and
// the CUDA naive (materializing) forward and backward against the CPU naive twin, on packed and
// strided layouts, GQA, causal with q_len <, = and > kv_len, decode, head dims that are and are
// not multiples of 16 (qk and v independent, up to 256; naive beyond) and lengths that are not
// multiples of any tile.
#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/error.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cpu/attention_naive.h"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/naive_attention.cuh"

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
  bool negative_scale = false;  // softmax scale -1/sqrt(qk_dim) instead of 1/sqrt(qk_dim)
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

// The inputs of one case: q, k, v and d_o at their operands' elements of their buffers (the rest
// holds the sentinel), rounded to bf16 for a bf16 kernel.
struct Inputs {
  Operands x;
  AttentionProblem p;
  bool shared_kv = false;  // the strided layout keeps k and v in one buffer
  std::vector<float> q, k, v_own, d_o;

  const std::vector<float>& v() const { return shared_kv ? k : v_own; }
};

template <typename T>
Inputs make_inputs(const Shape& s, unsigned seed) {
  std::mt19937 rng(seed);
  Inputs in;
  in.x = make_operands(s);
  const Operands& x = in.x;
  AttentionProblem& p = in.p;
  p.batch = s.batch, p.q_heads = s.q_heads, p.kv_heads = s.kv_heads;
  p.q_len = s.q_len, p.kv_len = s.kv_len, p.qk_dim = s.qk_dim, p.v_dim = s.v_dim;
  p.scale = (s.negative_scale ? -1.0 : 1.0) / std::sqrt(static_cast<double>(s.qk_dim));
  p.causal = s.causal;
  p.q = x.q.layout, p.k = x.k.layout, p.v = x.v.layout, p.o = x.o.layout;

  in.shared_kv = s.layout == Layout::kStrided;
  in.q.assign(x.q_size, kSentinel);
  in.k.assign(x.kv_size, kSentinel);
  in.v_own.assign(in.shared_kv ? 0 : x.kv_size, kSentinel);
  in.d_o.assign(x.o_size, kSentinel);
  std::vector<float>& v = in.shared_kv ? in.k : in.v_own;
  fill_operand(rng, in.q, x.q, s.batch);
  fill_operand(rng, in.k, x.k, s.batch);
  fill_operand(rng, v, x.v, s.batch);
  fill_operand(rng, in.d_o, x.o, s.batch);
  if (!std::is_same_v<T, float>) {
    in.q = round_bf16(in.q), in.k = round_bf16(in.k), in.d_o = round_bf16(in.d_o);
    if (!in.shared_kv) in.v_own = round_bf16(in.v_own);
  }
  return in;
}

// dq, dk and dv from the kernel against the CPU twin's, each within `tol` relative to the element
// and (as atol) to the reference's scale.
template <typename T>
void expect_gradients(Checks& checks, double tol, const std::array<DeviceBuffer<T>*, 3>& got,
                      const std::array<const std::vector<float>*, 3>& want) {
  const char* names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i)
    checks.expect(names[i], mismatch_report(as_float(got[i]->download()), *want[i], tol,
                                            tol * scale_of(*want[i])));
}

// A T buffer of n sentinels: outputs start so, and elements no kernel writes must stay so.
template <typename T>
std::vector<T> sentinels(int64_t n) {
  return as_type<T>(std::vector<float>(n, kSentinel));
}

template <typename T>
void run_flash(const Shape& s, unsigned seed, Checks& checks,
               const kernels::cuda::FlashTiles& tiles = {}) {
  using Tol = AttentionTolerance<T>;
  const Inputs in = make_inputs<T>(s, seed);
  const Operands& x = in.x;
  const AttentionProblem& p = in.p;
  const std::vector<float>& q = in.q;
  const std::vector<float>& k = in.k;
  const std::vector<float>& v = in.v();
  const std::vector<float>& d_o = in.d_o;

  // ---- forward ----
  std::vector<float> o_ref(x.o_size, kSentinel), lse_ref(s.batch * s.q_heads * s.q_len);
  kernels::cpu::flash_attention_forward<float>(p, q.data() + x.q.offset, k.data() + x.k.offset,
                                               v.data() + x.v.offset, o_ref.data() + x.o.offset,
                                               lse_ref.data());
  const cudaStream_t stream = cuda::stream();
  DeviceBuffer<T> gq(as_type<T>(q)), gk(as_type<T>(k)), gv(as_type<T>(v));
  DeviceBuffer<T> go(sentinels<T>(x.o_size));
  DeviceBuffer<float> glse(lse_ref.size());
  kernels::cuda::flash_attention_forward<T>(p, gq.get() + x.q.offset, gk.get() + x.k.offset,
                                            gv.get() + x.v.offset, go.get() + x.o.offset,
                                            glse.get(), stream, tiles);
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
  DeviceBuffer<T> gdq(sentinels<T>(x.q_size)), gdk(sentinels<T>(x.kv_size)),
      gdv(sentinels<T>(x.kv_size));
  DeviceBuffer<float> workspace(kernels::cuda::flash_attention_backward_workspace(p));
  kernels::cuda::flash_attention_backward<T>(
      p, gq.get() + x.q.offset, gk.get() + x.k.offset, gv.get() + x.v.offset,
      go_in.get() + x.o.offset, gd_o.get() + x.o.offset, glse_in.get(), gdq.get() + x.q.offset,
      gdk.get() + x.k.offset, gdv.get() + x.v.offset, workspace.get(), stream, tiles);
  expect_gradients<T>(checks, Tol::kGrad, {&gdq, &gdk, &gdv}, {&dq_ref, &dk_ref, &dv_ref});
}

// Naive attention tolerances (the same scheme). float: cuBLAS and the CPU's BLAS sum the same fp32
// products in other orders: 1e-4. bf16: where the CPU twin keeps fp32, the kernel stores the
// scores, probabilities, d probs and d scores in bf16 (2^-9 relative each; a score off by
// |score| 2^-9 moves its probability by |scale * score| 2^-9 relative, below 2^-8 here): 1% for
// the probabilities and o, 2% for the gradients, which sum many such terms.
template <typename T>
struct NaiveTolerance {
  static constexpr bool kBf16 = !std::is_same_v<T, float>;
  static constexpr double kProbs = kBf16 ? 1e-2 : 1e-4;
  static constexpr double kOut = kBf16 ? 1e-2 : 1e-4;
  static constexpr double kGrad = kBf16 ? 2e-2 : 1e-4;
};

template <typename T>
void run_naive(const Shape& s, unsigned seed, Checks& checks) {
  using Tol = NaiveTolerance<T>;
  const Inputs in = make_inputs<T>(s, seed);
  const Operands& x = in.x;
  const AttentionProblem& p = in.p;
  const std::vector<float>& q = in.q;
  const std::vector<float>& k = in.k;
  const std::vector<float>& v = in.v();
  const std::vector<float>& d_o = in.d_o;

  // ---- forward ----
  std::vector<float> o_ref(x.o_size, kSentinel),
      probs_ref(s.batch * s.q_heads * s.q_len * s.kv_len);
  kernels::cpu::naive_attention_forward<float>(p, q.data() + x.q.offset, k.data() + x.k.offset,
                                               v.data() + x.v.offset, o_ref.data() + x.o.offset,
                                               probs_ref.data());
  const cudaStream_t stream = cuda::stream();
  DeviceBuffer<T> gq(as_type<T>(q)), gk(as_type<T>(k)), gv(as_type<T>(v));
  DeviceBuffer<T> go(sentinels<T>(x.o_size)), gprobs(sentinels<T>(probs_ref.size()));
  kernels::cuda::naive_attention_forward<T>(cuda::blas(), p, gq.get() + x.q.offset,
                                            gk.get() + x.k.offset, gv.get() + x.v.offset,
                                            go.get() + x.o.offset, gprobs.get(), stream);
  checks.expect(
      "o", mismatch_report(as_float(go.download()), o_ref, Tol::kOut, Tol::kOut * scale_of(o_ref)));
  checks.expect("probs", mismatch_report(as_float(gprobs.download()), probs_ref, Tol::kProbs,
                                         Tol::kProbs * scale_of(probs_ref)));

  // ---- backward, both sides from the CPU's probabilities (in the kernel's type) ----
  const std::vector<float> probs_in = Tol::kBf16 ? round_bf16(probs_ref) : probs_ref;
  std::vector<float> dq_ref(x.q_size, kSentinel), dk_ref(x.kv_size, kSentinel),
      dv_ref(x.kv_size, kSentinel);
  kernels::cpu::naive_attention_backward<float>(
      p, q.data() + x.q.offset, k.data() + x.k.offset, v.data() + x.v.offset, probs_in.data(),
      d_o.data() + x.o.offset, dq_ref.data() + x.q.offset, dk_ref.data() + x.k.offset,
      dv_ref.data() + x.v.offset);
  DeviceBuffer<T> gprobs_in(as_type<T>(probs_in)), gd_o(as_type<T>(d_o));
  DeviceBuffer<T> gdq(sentinels<T>(x.q_size)), gdk(sentinels<T>(x.kv_size)),
      gdv(sentinels<T>(x.kv_size));
  DeviceBuffer<T> workspace(kernels::cuda::naive_attention_backward_workspace(p));
  kernels::cuda::naive_attention_backward<T>(
      cuda::blas(), p, gq.get() + x.q.offset, gk.get() + x.k.offset, gv.get() + x.v.offset,
      gprobs_in.get(), gd_o.get() + x.o.offset, gdq.get() + x.q.offset, gdk.get() + x.k.offset,
      gdv.get() + x.v.offset, workspace.get(), stream);
  expect_gradients<T>(checks, Tol::kGrad, {&gdq, &gdk, &gdv}, {&dq_ref, &dk_ref, &dv_ref});
}

std::string describe(const Shape& s, const char* kernel, const char* type) {
  std::ostringstream out;
  out << kernel << " " << type << " B" << s.batch << " H" << s.q_heads << "/" << s.kv_heads << " T"
      << s.q_len << "/" << s.kv_len << " d(" << s.qk_dim << "," << s.v_dim << ")"
      << (s.causal ? " causal" : "") << (s.layout == Layout::kStrided ? " strided" : "")
      << (s.negative_scale ? " negative scale" : "");
  return out.str();
}

// Every tile variant of the tensor-core kernels can run on this GPU at each instantiation's head
// dims: at least one block resident per SM, a register count ptxas could give (1 to 255), and the
// warps per SM that the blocks make; a variant whose shared memory or registers exceed the SM
// would report 0 blocks and fail every launch. Head dims past the tensor-core kernels are an
// error naming them.
void run_tile_occupancy(Checks& checks) {
  const kernels::cuda::FlashTileVariants names = kernels::cuda::flash_tile_variants();
  for (const auto& [qk, v] :
       {std::pair<int64_t, int64_t>{64, 64}, {96, 64}, {128, 128}, {192, 128}}) {
    const kernels::cuda::FlashTileOccupancy o = kernels::cuda::flash_tile_occupancy(qk, v);
    const struct {
      const char* kernel;
      const std::vector<kernels::cuda::FlashVariantOccupancy>* list;
      size_t variants;
    } kernels_of[] = {{"forward", &o.forward, names.forward.size()},
                      {"dkdv", &o.dkdv, names.dkdv.size()},
                      {"dq", &o.dq, names.dq.size()}};
    for (const auto& [kernel, list, variants] : kernels_of) {
      const std::string where = "d(" + std::to_string(qk) + "," + std::to_string(v) + ") " + kernel;
      checks.expect(where, list->size() == variants ? "" : "not one entry per variant");
      for (size_t i = 0; i < list->size(); ++i) {
        const kernels::cuda::FlashVariantOccupancy& x = (*list)[i];
        const bool ok = x.blocks_per_sm >= 1 && x.registers >= 1 && x.registers <= 255 &&
                        x.warps_per_sm % x.blocks_per_sm == 0;
        checks.expect(where + " variant " + std::to_string(i),
                      ok ? ""
                         : "registers " + std::to_string(x.registers) + ", blocks per SM " +
                               std::to_string(x.blocks_per_sm) + ", warps per SM " +
                               std::to_string(x.warps_per_sm));
      }
    }
  }
  std::string error;
  try {
    kernels::cuda::flash_tile_occupancy(256, 128);
  } catch (const Error& e) {
    error = e.what();
  }
  checks.expect("qk 256", error.find("head dims qk 256, v 128 are not taken") != std::string::npos
                              ? ""
                              : "expected an error naming the head dims, got '" + error + "'");
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
      // Several query and key tiles of every bf16 tensor-core kernel, GQA, causal.
      {1, 4, 2, 300, 300, 192, 128, true, P},
      {2, 2, 1, 130, 260, 128, 64, true, S},     // v narrower than its instantiation
      {1, 4, 2, 200, 200, 96, 64, true, S},      // MLA's 64 + 32 / 64: the 96/64 instantiation
      {2, 2, 1, 77, 130, 80, 48, true, P},       // inside 96/64
      {1, 2, 2, 90, 90, 160, 160, true, P},      // v past the tensor-core kernels: bf16 tiles
      {1, 2, 1, 70, 70, 64, 64, true, S, true},  // negative scale: bf16 tiles as well
  };
  std::vector<KernelCase> cases;
  unsigned seed = 100;
  for (const Shape& s : shapes) {
    cases.push_back({describe(s, "flash_attention", "f32"),
                     [s, seed](Checks& c) { run_flash<float>(s, seed, c); }});
    cases.push_back({describe(s, "flash_attention", "bf16"),
                     [s, seed](Checks& c) { run_flash<bf16>(s, seed, c); }});
    ++seed;
  }
  // Every tile variant of the tensor-core kernels (variant i of each kernel together) on a shape
  // of each instantiation with several tiles of every kernel, GQA and causal, on head dims that
  // do not fill their instantiation (the pipelined kernels' unpipelined walk) and on a decode
  // step (one query row: the pipelined walk with one warp that has rows).
  const kernels::cuda::FlashTileVariants names = kernels::cuda::flash_tile_variants();
  const int variants =
      static_cast<int>(std::max({names.forward.size(), names.dkdv.size(), names.dq.size()}));
  for (int i = 1; i < variants; ++i)
    for (const Shape& s :
         {Shape{1, 4, 2, 150, 150, 64, 64, true, P}, Shape{1, 2, 2, 140, 140, 96, 64, true, S},
          Shape{2, 2, 1, 130, 260, 128, 64, true, S}, Shape{1, 4, 2, 300, 300, 192, 128, true, P},
          Shape{1, 2, 1, 200, 200, 80, 48, true, S},     // qk and v short of the instantiation
          Shape{2, 4, 2, 1, 300, 128, 128, true, S}}) {  // decode: one row, many key tiles
      const auto last = [&](const std::vector<std::string>& list) {
        return std::min(i, static_cast<int>(list.size()) - 1);
      };
      const kernels::cuda::FlashTiles tiles{last(names.forward), last(names.dkdv), last(names.dq)};
      cases.push_back({describe(s, "flash_attention", "bf16") + " tiles " + std::to_string(i),
                       [s, seed, tiles](Checks& c) { run_flash<bf16>(s, seed, c, tiles); }});
      ++seed;
    }
  cases.push_back({"flash tile variants occupy the SM", run_tile_occupancy});
  // The naive kernels have no head-dim limit: one shape past the flash kernels' 256.
  std::vector<Shape> naive_shapes = shapes;
  naive_shapes.push_back({1, 4, 2, 30, 45, 320, 272, true, S});
  for (const Shape& s : naive_shapes) {
    cases.push_back({describe(s, "naive_attention", "f32"),
                     [s, seed](Checks& c) { run_naive<float>(s, seed, c); }});
    cases.push_back({describe(s, "naive_attention", "bf16"),
                     [s, seed](Checks& c) { run_naive<bf16>(s, seed, c); }});
    ++seed;
  }
  return cases;
}

}  // namespace latte::test
