// CPU attention kernels (naive and FlashAttention-2): forward values against hand-computed numbers
// and a direct loop reference, gradients against central finite differences in double, naive ==
// flash in float, a decoding step against the full computation, grouped-query and strided
// layouts, rows that see no key, and flash results independent of the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cpu/attention_naive.h"
#include "tests/support/finite_difference.h"

namespace {

using namespace latte::kernels::cpu;
using latte::test::max_relative_error;

// How an operand sits in its buffer.
enum class Storage {
  kPacked,     // [batch, tokens, heads, dim] without gaps
  kPadded,     // 3 unused elements after each head vector, 5 after each token, 2 after each batch
  kHeadMajor,  // [batch, heads, tokens, dim]
};

AttentionLayout make_layout(Storage storage, int64_t tokens, int64_t heads, int64_t dim) {
  switch (storage) {
    case Storage::kPacked:
      return packed_attention_layout(tokens, heads, dim);
    case Storage::kPadded: {
      const int64_t head = dim + 3, token = heads * head + 5;
      return {tokens * token + 2, token, head};
    }
    case Storage::kHeadMajor:
      return {heads * tokens * dim, dim, tokens * dim};
  }
  return {};
}

struct Shape {
  int64_t batch = 1, q_heads = 1, kv_heads = 1, q_len = 1, kv_len = 1, qk_dim = 1, v_dim = 1;
  bool causal = true;
  Storage q = Storage::kPacked, k = Storage::kPacked, v = Storage::kPacked, o = Storage::kPacked;
};

AttentionProblem make_problem(const Shape& s) {
  AttentionProblem p{s.batch,
                     s.q_heads,
                     s.kv_heads,
                     s.q_len,
                     s.kv_len,
                     s.qk_dim,
                     s.v_dim,
                     1.0 / std::sqrt(double(s.qk_dim)),
                     s.causal,
                     make_layout(s.q, s.q_len, s.q_heads, s.qk_dim),
                     make_layout(s.k, s.kv_len, s.kv_heads, s.qk_dim),
                     make_layout(s.v, s.kv_len, s.kv_heads, s.v_dim),
                     make_layout(s.o, s.q_len, s.q_heads, s.v_dim)};
  check_attention_problem(p, "test");
  return p;
}

// One operand of a problem: its layout and [batch, tokens, heads, dim] shape.
struct Operand {
  AttentionLayout layout;
  int64_t batch, tokens, heads, dim;

  int64_t offset(int64_t b, int64_t t, int64_t h) const {
    return b * layout.batch_stride + t * layout.token_stride + h * layout.head_stride;
  }
  // Buffer offsets of the addressed elements, in [b, t, h, d] order.
  std::vector<int64_t> offsets() const {
    std::vector<int64_t> out;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t d = 0; d < dim; ++d) out.push_back(offset(b, t, h) + d);
    return out;
  }
  size_t buffer_size() const {
    const auto all = offsets();
    return all.empty() ? 0 : size_t(*std::max_element(all.begin(), all.end()) + 1);
  }
};

Operand q_operand(const AttentionProblem& p) {
  return {p.q, p.batch, p.q_len, p.q_heads, p.qk_dim};
}
Operand k_operand(const AttentionProblem& p) {
  return {p.k, p.batch, p.kv_len, p.kv_heads, p.qk_dim};
}
Operand v_operand(const AttentionProblem& p) {
  return {p.v, p.batch, p.kv_len, p.kv_heads, p.v_dim};
}
Operand o_operand(const AttentionProblem& p) {
  return {p.o, p.batch, p.q_len, p.q_heads, p.v_dim};
}

// Unaddressed input elements hold NaN, so a kernel reading one poisons its results; output and
// gradient buffers start as kSentinel everywhere, so a kernel that accumulates into them instead
// of overwriting, or writes outside its layout, is caught.
constexpr double kSentinel = 777.0;

template <typename T>
struct Tensors {
  std::vector<T> q, k, v, d_o, o, dq, dk, dv, probs, lse;
};

template <typename T>
std::vector<T> random_operand(const Operand& x, unsigned seed) {
  std::vector<T> buffer(x.buffer_size(), std::numeric_limits<T>::quiet_NaN());
  const auto offsets = x.offsets();
  const auto values = latte::test::random_vector(offsets.size(), seed);
  for (size_t i = 0; i < offsets.size(); ++i) buffer[offsets[i]] = T(values[i]);
  return buffer;
}

template <typename T>
Tensors<T> make_tensors(const AttentionProblem& p, unsigned seed) {
  Tensors<T> t;
  t.q = random_operand<T>(q_operand(p), seed);
  t.k = random_operand<T>(k_operand(p), seed + 1);
  t.v = random_operand<T>(v_operand(p), seed + 2);
  t.d_o = random_operand<T>(o_operand(p), seed + 3);
  t.o.assign(o_operand(p).buffer_size(), T(kSentinel));
  t.dq.assign(q_operand(p).buffer_size(), T(kSentinel));
  t.dk.assign(k_operand(p).buffer_size(), T(kSentinel));
  t.dv.assign(v_operand(p).buffer_size(), T(kSentinel));
  t.probs.assign(p.batch * p.q_heads * p.q_len * p.kv_len, T(kSentinel));
  t.lse.assign(p.batch * p.q_heads * p.q_len, T(kSentinel));
  return t;
}

template <typename T>
std::vector<double> gather(const std::vector<T>& buffer, const Operand& x) {
  std::vector<double> out;
  for (int64_t offset : x.offsets()) out.push_back(double(buffer[offset]));
  return out;
}

template <typename T>
void scatter(const std::vector<double>& values, std::vector<T>& buffer, const Operand& x) {
  const auto offsets = x.offsets();
  for (size_t i = 0; i < offsets.size(); ++i) buffer[offsets[i]] = T(values[i]);
}

// True when every element of `buffer` outside the layout still holds kSentinel.
template <typename T>
bool unaddressed_untouched(const std::vector<T>& buffer, const Operand& x) {
  std::vector<bool> addressed(buffer.size());
  for (int64_t offset : x.offsets()) addressed[offset] = true;
  for (size_t i = 0; i < buffer.size(); ++i)
    if (!addressed[i] && buffer[i] != T(kSentinel)) return false;
  return true;
}

// A kernel under test: naive, or flash with a given schedule.
struct Kernel {
  std::string name;
  bool flash;
  FlashSchedule schedule;
};

constexpr int64_t kNeverFuse = std::numeric_limits<int64_t>::max();

// The default tiles, and tiny tiles so that small problems span many of them (partial tiles, key
// tiles skipped above the diagonal); each with both backward schedules.
const std::vector<Kernel> kKernels = {
    {"naive", false, {}},
    {"flash 64x64 fused", true, {64, 64, 1}},
    {"flash 64x64 two-pass", true, {64, 64, kNeverFuse}},
    {"flash 4x3 fused", true, {4, 3, 1}},
    {"flash 4x3 two-pass", true, {4, 3, kNeverFuse}},
};

template <typename T>
void run_forward(const Kernel& kernel, const AttentionProblem& p, Tensors<T>& t) {
  if (kernel.flash)
    flash_attention_forward(p, t.q.data(), t.k.data(), t.v.data(), t.o.data(), t.lse.data(),
                            kernel.schedule);
  else
    naive_attention_forward(p, t.q.data(), t.k.data(), t.v.data(), t.o.data(), t.probs.data());
}

template <typename T>
void run_backward(const Kernel& kernel, const AttentionProblem& p, Tensors<T>& t) {
  if (kernel.flash)
    flash_attention_backward(p, t.q.data(), t.k.data(), t.v.data(), t.o.data(), t.d_o.data(),
                             t.lse.data(), t.dq.data(), t.dk.data(), t.dv.data(), kernel.schedule);
  else
    naive_attention_backward(p, t.q.data(), t.k.data(), t.v.data(), t.probs.data(), t.d_o.data(),
                             t.dq.data(), t.dk.data(), t.dv.data());
}

// Attention by its definition, one query at a time in double: o in the [b, t, h, d] order of
// gather() and the logsumexps as [b, h, t]. Rows that see no key get o = 0 and lse = -inf.
void reference_attention(const AttentionProblem& p, const Tensors<double>& t,
                         std::vector<double>& o, std::vector<double>& lse) {
  const Operand q = q_operand(p), k = k_operand(p), v = v_operand(p);
  o.assign(p.batch * p.q_len * p.q_heads * p.v_dim, 0.0);
  lse.assign(p.batch * p.q_heads * p.q_len, 0.0);
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.q_heads; ++h)
      for (int64_t i = 0; i < p.q_len; ++i) {
        const int64_t g = h / (p.q_heads / p.kv_heads);
        std::vector<double> scores;
        for (int64_t j = 0; j < p.kv_len; ++j) {
          if (p.causal && j > i + p.kv_len - p.q_len) break;
          double dot = 0;
          for (int64_t d = 0; d < p.qk_dim; ++d)
            dot += t.q[q.offset(b, i, h) + d] * t.k[k.offset(b, j, g) + d];
          scores.push_back(p.scale * dot);
        }
        double max_score = -INFINITY, sum = 0;
        for (double s : scores) max_score = std::max(max_score, s);
        for (double s : scores) sum += std::exp(s - max_score);
        const double row_lse = scores.empty() ? -INFINITY : max_score + std::log(sum);
        lse[(b * p.q_heads + h) * p.q_len + i] = row_lse;
        for (int64_t d = 0; d < p.v_dim; ++d) {
          double acc = 0;
          for (size_t j = 0; j < scores.size(); ++j)
            acc += std::exp(scores[j] - row_lse) * t.v[v.offset(b, int64_t(j), g) + d];
          o[((b * p.q_len + i) * p.q_heads + h) * p.v_dim + d] = acc;
        }
      }
}

// Shapes for the double-precision checks. Head dims of the seed variants (SPEC §6): qk/v 64/64,
// 48/64 (nope 16 + rope 32), 48/48 (nope 8 + rope 40), and DeepSeek-V3's 192/128 scaled to 24/16.
struct NamedShape {
  std::string name;
  Shape shape;
};

const std::vector<NamedShape> kShapes = {
    {"seed 64/64",
     {.q_heads = 2, .kv_heads = 2, .q_len = 5, .kv_len = 5, .qk_dim = 64, .v_dim = 64}},
    {"mixed heads 48/64, padded q",
     {.q_heads = 2,
      .kv_heads = 2,
      .q_len = 6,
      .kv_len = 6,
      .qk_dim = 48,
      .v_dim = 64,
      .q = Storage::kPadded}},
    {"hybrid 48/48, not causal",
     {.q_heads = 3,
      .kv_heads = 3,
      .q_len = 7,
      .kv_len = 7,
      .qk_dim = 48,
      .v_dim = 48,
      .causal = false}},
    {"DeepSeek-V3 192/128 scaled to 24/16",
     {.batch = 2, .q_heads = 2, .kv_heads = 2, .q_len = 9, .kv_len = 9, .qk_dim = 24, .v_dim = 16}},
    {"grouped query 4/2",
     {.q_heads = 4, .kv_heads = 2, .q_len = 10, .kv_len = 10, .qk_dim = 8, .v_dim = 12}},
    {"multi query 3/1, not causal",
     {.batch = 2,
      .q_heads = 3,
      .kv_heads = 1,
      .q_len = 6,
      .kv_len = 6,
      .qk_dim = 6,
      .v_dim = 4,
      .causal = false}},
    {"strided layouts, q_len 4 < kv_len 9",
     {.batch = 2,
      .q_heads = 2,
      .kv_heads = 1,
      .q_len = 4,
      .kv_len = 9,
      .qk_dim = 8,
      .v_dim = 6,
      .q = Storage::kPadded,
      .k = Storage::kHeadMajor,
      .v = Storage::kPadded,
      .o = Storage::kHeadMajor}},
    {"q_len 7 > kv_len 3, not causal",
     {.q_heads = 2,
      .kv_heads = 2,
      .q_len = 7,
      .kv_len = 3,
      .qk_dim = 5,
      .v_dim = 3,
      .causal = false}},
    {"q_len 5 > kv_len 3, causal: rows 0-1 see no key",
     {.q_heads = 1, .kv_heads = 1, .q_len = 5, .kv_len = 3, .qk_dim = 4, .v_dim = 3}},
    {"70 tokens: one full 64 tile and a partial one",
     {.q_len = 70, .kv_len = 70, .qk_dim = 8, .v_dim = 8}},
    {"67 queries, 130 keys, not causal, head-major",
     {.q_len = 67,
      .kv_len = 130,
      .qk_dim = 4,
      .v_dim = 4,
      .causal = false,
      .q = Storage::kHeadMajor,
      .k = Storage::kHeadMajor,
      .v = Storage::kHeadMajor,
      .o = Storage::kHeadMajor}},
};

TEST_CASE("attention forward matches hand-computed values for two tokens") {
  // One head, dim 2, scale 1. q0 = (1, 0), q1 = (0, 1); k0 = (0, 0), k1 = (0, ln 3); v0 = (1, 2),
  // v1 = (3, -1). Scores: row 0 (0, 0), row 1 (0, ln 3). Not causal: probs (1/2, 1/2) and
  // (1/4, 3/4), o0 = (2, 0.5), o1 = (2.5, -0.25), lse = (ln 2, ln 4). Causal: row 0 sees k0 only,
  // so probs (1, 0), o0 = v0 = (1, 2), lse0 = 0; row 1 unchanged.
  const double ln3 = std::log(3.0);
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    AttentionProblem p{1, 1, 1, 2, 2, 2, 2, 1.0, causal, {}, {}, {}, {}};
    p.q = p.k = p.v = p.o = packed_attention_layout(2, 1, 2);
    const std::vector<double> o_expected =
        causal ? std::vector<double>{1, 2, 2.5, -0.25} : std::vector<double>{2, 0.5, 2.5, -0.25};
    const std::vector<double> probs_expected =
        causal ? std::vector<double>{1, 0, 0.25, 0.75} : std::vector<double>{0.5, 0.5, 0.25, 0.75};
    const std::vector<double> lse_expected = {causal ? 0.0 : std::log(2.0), std::log(4.0)};
    for (const Kernel& kernel : kKernels) {
      CAPTURE(kernel.name);
      Tensors<double> t;
      t.q = {1, 0, 0, 1};
      t.k = {0, 0, 0, ln3};
      t.v = {1, 2, 3, -1};
      t.o.assign(4, kSentinel);
      t.probs.assign(4, kSentinel);
      t.lse.assign(2, kSentinel);
      run_forward(kernel, p, t);
      // 1e-15: a handful of double roundings on numbers of order 1.
      CHECK(max_relative_error(t.o, o_expected) < 1e-15);
      if (kernel.flash)
        CHECK(max_relative_error(t.lse, lse_expected) < 1e-15);
      else
        CHECK(max_relative_error(t.probs, probs_expected) < 1e-15);
    }
  }
}

TEST_CASE("attention forward matches the definition computed one query at a time") {
  for (const NamedShape& named : kShapes) {
    const AttentionProblem p = make_problem(named.shape);
    Tensors<double> t = make_tensors<double>(p, 11);
    std::vector<double> o_expected, lse_expected;
    reference_attention(p, t, o_expected, lse_expected);
    for (const Kernel& kernel : kKernels) {
      CAPTURE(named.name);
      CAPTURE(kernel.name);
      run_forward(kernel, p, t);
      // 1e-13: double sums of at most 130 terms of order 1 in a different order than the loops.
      CHECK(max_relative_error(gather(t.o, o_operand(p)), o_expected) < 1e-13);
      CHECK(unaddressed_untouched(t.o, o_operand(p)));
      if (!kernel.flash) continue;
      for (size_t r = 0; r < lse_expected.size(); ++r) {
        if (std::isinf(lse_expected[r]))
          CHECK(t.lse[r] == lse_expected[r]);
        else
          CHECK(std::abs(t.lse[r] - lse_expected[r]) < 1e-13);
      }
    }
  }
}

TEST_CASE("attention gradients match central finite differences in double") {
  for (const NamedShape& named : kShapes) {
    const AttentionProblem p = make_problem(named.shape);
    for (const Kernel& kernel : kKernels) {
      // Long problems already span several 64-wide tiles; tiny tiles there only cost time.
      if (kernel.flash && kernel.schedule.kv_tile < 64 && p.kv_len > 64) continue;
      CAPTURE(named.name);
      CAPTURE(kernel.name);
      Tensors<double> t = make_tensors<double>(p, 23);
      run_forward(kernel, p, t);
      run_backward(kernel, p, t);
      const Operand o = o_operand(p);
      const std::vector<int64_t> o_offsets = o.offsets();
      // loss = sum(o * d_o), so d loss / d o = d_o.
      auto loss = [&] {
        run_forward(kernel, p, t);
        double sum = 0;
        for (int64_t offset : o_offsets) sum += t.o[offset] * t.d_o[offset];
        return sum;
      };
      struct Input {
        const char* name;
        std::vector<double>* values;
        const std::vector<double>* grad;
        Operand operand;
      };
      for (const Input& in :
           {Input{"q", &t.q, &t.dq, q_operand(p)}, Input{"k", &t.k, &t.dk, k_operand(p)},
            Input{"v", &t.v, &t.dv, v_operand(p)}}) {
        CAPTURE(in.name);
        std::vector<double> x = gather(*in.values, in.operand);
        const std::vector<double> numeric = latte::test::numeric_gradient(
            [&] {
              scatter(x, *in.values, in.operand);
              return loss();
            },
            x);
        scatter(x, *in.values, in.operand);
        // Central differences with eps 1e-6: truncation ~eps^2 = 1e-12 and rounding ~1e-16 *
        // |loss| / eps < 1e-8 against gradients of order 0.1-1, so 1e-6 of the largest gradient.
        CHECK(max_relative_error(gather(*in.grad, in.operand), numeric) < 1e-6);
        CHECK(unaddressed_untouched(*in.grad, in.operand));
      }
    }
  }
}

TEST_CASE("naive and flash attention agree in float, forward and backward") {
  // Error measure, per output tensor (o, dq, dk, dv): max_i |flash_i - naive_i| / max_j |naive_j|,
  // i.e. relative to the tensor's scale so that entries near zero do not dominate.
  // 1e-5: float rounding (6e-8) grown over sums of up to 200 terms, with room to spare.
  const std::vector<NamedShape> shapes = {
      {"130 tokens, grouped 4/2, 48/64, causal",
       {.batch = 2,
        .q_heads = 4,
        .kv_heads = 2,
        .q_len = 130,
        .kv_len = 130,
        .qk_dim = 48,
        .v_dim = 64}},
      {"DeepSeek-V3 192/128, 100 tokens",
       {.q_heads = 2, .kv_heads = 2, .q_len = 100, .kv_len = 100, .qk_dim = 192, .v_dim = 128}},
      {"70 queries, 200 keys, strided, not causal",
       {.batch = 2,
        .q_heads = 2,
        .kv_heads = 2,
        .q_len = 70,
        .kv_len = 200,
        .qk_dim = 24,
        .v_dim = 16,
        .causal = false,
        .q = Storage::kPadded,
        .k = Storage::kHeadMajor,
        .v = Storage::kPadded,
        .o = Storage::kHeadMajor}},
      {"65 queries, 190 keys, causal",
       {.q_heads = 3, .kv_heads = 1, .q_len = 65, .kv_len = 190, .qk_dim = 64, .v_dim = 64}},
  };
  for (const NamedShape& named : shapes) {
    const AttentionProblem p = make_problem(named.shape);
    Tensors<float> naive = make_tensors<float>(p, 5);
    run_forward(kKernels[0], p, naive);
    run_backward(kKernels[0], p, naive);
    for (const Kernel& kernel : kKernels) {
      if (!kernel.flash || kernel.schedule.kv_tile < 64) continue;  // tiny tiles: see above
      CAPTURE(named.name);
      CAPTURE(kernel.name);
      Tensors<float> flash = make_tensors<float>(p, 5);
      run_forward(kernel, p, flash);
      run_backward(kernel, p, flash);
      CHECK(max_relative_error(gather(flash.o, o_operand(p)), gather(naive.o, o_operand(p))) <
            1e-5);
      CHECK(max_relative_error(gather(flash.dq, q_operand(p)), gather(naive.dq, q_operand(p))) <
            1e-5);
      CHECK(max_relative_error(gather(flash.dk, k_operand(p)), gather(naive.dk, k_operand(p))) <
            1e-5);
      CHECK(max_relative_error(gather(flash.dv, v_operand(p)), gather(naive.dv, v_operand(p))) <
            1e-5);
    }
  }
}

TEST_CASE("a decoding step (one query, long cache) equals the last row of the full computation") {
  const Shape full_shape{.batch = 2,
                         .q_heads = 4,
                         .kv_heads = 2,
                         .q_len = 150,
                         .kv_len = 150,
                         .qk_dim = 24,
                         .v_dim = 16};
  Shape step_shape = full_shape;
  step_shape.q_len = 1;
  const AttentionProblem full = make_problem(full_shape), step = make_problem(step_shape);
  for (const Kernel& kernel : kKernels) {
    CAPTURE(kernel.name);
    Tensors<double> f = make_tensors<double>(full, 3);
    // Upstream gradient only on the last query, so that the full dk/dv are those of the step.
    for (int64_t b = 0; b < full.batch; ++b)
      for (int64_t i = 0; i + 1 < full.q_len; ++i)
        for (int64_t h = 0; h < full.q_heads; ++h)
          std::fill_n(f.d_o.begin() + o_operand(full).offset(b, i, h), full.v_dim, 0.0);
    Tensors<double> s = make_tensors<double>(step, 4);
    s.k = f.k;
    s.v = f.v;
    for (int64_t b = 0; b < full.batch; ++b)
      for (int64_t h = 0; h < full.q_heads; ++h) {
        std::copy_n(f.q.begin() + q_operand(full).offset(b, full.q_len - 1, h), full.qk_dim,
                    s.q.begin() + q_operand(step).offset(b, 0, h));
        std::copy_n(f.d_o.begin() + o_operand(full).offset(b, full.q_len - 1, h), full.v_dim,
                    s.d_o.begin() + o_operand(step).offset(b, 0, h));
      }
    run_forward(kernel, full, f);
    run_backward(kernel, full, f);
    run_forward(kernel, step, s);
    run_backward(kernel, step, s);
    std::vector<double> o_last, dq_last, lse_last;
    for (int64_t b = 0; b < full.batch; ++b)
      for (int64_t h = 0; h < full.q_heads; ++h) {
        const int64_t o_at = o_operand(full).offset(b, full.q_len - 1, h);
        const int64_t q_at = q_operand(full).offset(b, full.q_len - 1, h);
        o_last.insert(o_last.end(), f.o.begin() + o_at, f.o.begin() + o_at + full.v_dim);
        dq_last.insert(dq_last.end(), f.dq.begin() + q_at, f.dq.begin() + q_at + full.qk_dim);
        lse_last.push_back(f.lse[(b * full.q_heads + h) * full.q_len + full.q_len - 1]);
      }
    // 1e-13: the same double sums, cut into different tiles.
    CHECK(max_relative_error(gather(s.o, o_operand(step)), o_last) < 1e-13);
    CHECK(max_relative_error(gather(s.dq, q_operand(step)), dq_last) < 1e-13);
    CHECK(max_relative_error(gather(s.dk, k_operand(step)), gather(f.dk, k_operand(full))) < 1e-13);
    CHECK(max_relative_error(gather(s.dv, v_operand(step)), gather(f.dv, v_operand(full))) < 1e-13);
    if (kernel.flash) CHECK(max_relative_error(s.lse, lse_last) < 1e-13);
  }
}

TEST_CASE("flash attention results do not depend on the thread count") {
  const AttentionProblem p = make_problem({.batch = 2,
                                           .q_heads = 4,
                                           .kv_heads = 2,
                                           .q_len = 150,
                                           .kv_len = 150,
                                           .qk_dim = 24,
                                           .v_dim = 16});
  const int saved_threads = omp_get_max_threads();
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  for (const Kernel& kernel : kKernels) {
    if (!kernel.flash) continue;
    CAPTURE(kernel.name);
    omp_set_num_threads(1);
    Tensors<float> one = make_tensors<float>(p, 9);
    run_forward(kernel, p, one);
    run_backward(kernel, p, one);
    for (int threads : {2, 3, 5}) {
      CAPTURE(threads);
      omp_set_num_threads(threads);
      Tensors<float> many = make_tensors<float>(p, 9);
      run_forward(kernel, p, many);
      run_backward(kernel, p, many);
      CHECK(same_bits(one.o, many.o));
      CHECK(same_bits(one.lse, many.lse));
      CHECK(same_bits(one.dq, many.dq));
      CHECK(same_bits(one.dk, many.dk));
      CHECK(same_bits(one.dv, many.dv));
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST_CASE("check_attention_problem names the operation and the offending values") {
  AttentionProblem p =
      make_problem({.q_heads = 4, .kv_heads = 2, .q_len = 3, .kv_len = 3, .qk_dim = 8, .v_dim = 8});
  p.kv_heads = 3;
  CHECK_THROWS_WITH_AS(check_attention_problem(p, "attention"),
                       doctest::Contains("attention: q_heads 4 is not a multiple of kv_heads 3"),
                       latte::Error);
  p.kv_heads = 2;
  p.k.token_stride = 4;
  CHECK_THROWS_WITH_AS(check_attention_problem(p, "attention"),
                       doctest::Contains("k token_stride 4 is smaller than its head dim 8"),
                       latte::Error);
  p.k.token_stride = 16;
  p.q_len = 0;
  CHECK_THROWS_WITH_AS(check_attention_problem(p, "attention"),
                       doctest::Contains("sizes must be positive"), latte::Error);
}

}  // namespace
