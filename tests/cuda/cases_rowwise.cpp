// Row-wise and elementwise cases: RoPE (both pair layouts, strided, in place, position offset,
// 16-byte packs or elements), RMSNorm (rows contiguous, strided or misaligned; packed or element
// paths; dweight over several row chunks), softmax, SiLU / SwiGLU / sigmoid, embedding and fused
// cross-entropy (with the device scalars of its mean), each in f32 and bf16 against the CPU twin;
// and the device check of ids.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/norm_softmax.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/activations.cuh"
#include "kernels/cuda/cross_entropy.cuh"
#include "kernels/cuda/cross_entropy_mean.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/id_check.cuh"
#include "kernels/cuda/norm_softmax.cuh"
#include "kernels/cuda/rope.cuh"

namespace latte::test {

namespace {

using kernels::cpu::AttentionLayout;

// ---- RoPE ----
// float: a*c - b*s with or without a fused multiply-add differs by about one ulp of the products
// (inputs and tables are in [-1, 1]): 1e-6. bf16: one output rounding.
// Each token's heads are followed by `pad` elements: 4 leaves bf16 tokens 8-byte aligned (element
// accesses), 8 aligns them to 16 bytes (16-byte packs of 8 pairs, or 4 in f32). rope_dim 12 has
// half 6, not a multiple of any pack (element accesses in both types).
template <typename T>
void run_rope(bool interleave, bool in_place, int64_t pad, int64_t rope_dim, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>((interleave ? 11 : 12) + pad + rope_dim));
  const int64_t batch = 2, tokens = 17, heads = 3, head_dim = 24, offset = 5;
  const AttentionLayout layout{tokens * (heads * head_dim + pad), heads * head_dim + pad, head_dim};
  const size_t n = batch * layout.batch_stride;
  const int64_t half = rope_dim / 2, table_len = offset + tokens;
  const std::vector<float> angles = uniform(rng, table_len * half, -3.f, 3.f);
  std::vector<float> cos(angles.size()), sin(angles.size());
  for (size_t i = 0; i < angles.size(); ++i)
    cos[i] = std::cos(angles[i]), sin[i] = std::sin(angles[i]);
  const std::vector<float> x = random_input<T>(rng, n);
  const double rtol = is_bf16<T>() ? kBf16Rounding : 1e-6;
  DeviceBuffer<float> gcos(cos), gsin(sin);
  for (bool forward : {true, false}) {
    std::vector<float> y_ref(n, 0.5f);
    if (in_place) y_ref = x;
    if (forward)
      kernels::cpu::rope_forward<float>(x.data(), layout, y_ref.data(), layout, batch, tokens,
                                        heads, rope_dim, cos.data(), sin.data(), offset,
                                        interleave);
    else
      kernels::cpu::rope_backward<float>(x.data(), layout, y_ref.data(), layout, batch, tokens,
                                         heads, rope_dim, cos.data(), sin.data(), offset,
                                         interleave);
    DeviceBuffer<T> gx(as_type<T>(x));
    DeviceBuffer<T> gy(as_type<T>(in_place ? x : std::vector<float>(n, 0.5f)));
    T* out = in_place ? gx.get() : gy.get();
    if (forward)
      kernels::cuda::rope_forward<T>(gx.get(), layout, out, layout, batch, tokens, heads, rope_dim,
                                     gcos.get(), gsin.get(), offset, interleave, cuda::stream());
    else
      kernels::cuda::rope_backward<T>(gx.get(), layout, out, layout, batch, tokens, heads, rope_dim,
                                      gcos.get(), gsin.get(), offset, interleave, cuda::stream());
    const std::vector<float> y = as_float(in_place ? gx.download() : gy.download());
    checks.expect(forward ? "y" : "dx", mismatch_report(y, y_ref, rtol, 1e-6));
  }
}

// ---- RMSNorm ----
// float: fp32 statistics against the CPU's double sums: 1e-5 (rows of a few hundred to a few
// thousand elements), and 1e-5 of the scale for dx and dweight, which sum rows in another order.
// bf16: one output rounding, plus the same fp32 differences. x's rows lie `stride` >= cols
// elements apart (read in place), the gaps filled with values that would change every result,
// and start `lead` elements into the buffer (1: rows that are not 16-byte aligned). dweight sums
// in a fixed order, so a second backward gives the same bits (tolerance 0). An fp32 weight
// under bf16 rows (Wt = float: master weights) holds values bf16 cannot, and its dweight is held
// to the fp32 tolerance: a weight read through bf16 or a dweight rounded to it fails.
template <typename T, typename Wt = T>
void run_rms_norm(int64_t rows, int64_t cols, int64_t stride, int64_t lead, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(rows * 131 + cols + stride + lead));
  const std::vector<float> x_buffer = random_input<T>(rng, lead + rows * stride, -2.f, 2.f);
  const std::vector<float> x(x_buffer.begin() + lead, x_buffer.end());
  const std::vector<float> w = random_input<Wt>(rng, cols, 0.5f, 1.5f);
  const std::vector<float> dy = random_input<T>(rng, rows * cols);
  const double eps = 1e-6;
  const double rtol = is_bf16<T>() ? kBf16Rounding : 1e-5;
  const double dw_rtol = is_bf16<Wt>() ? kBf16Rounding : 1e-5;
  std::vector<float> y_ref(rows * cols), rstd_ref(rows), dx_ref(rows * cols), dw_ref(cols);
  kernels::cpu::rms_norm_forward(x.data(), stride, w.data(), y_ref.data(), rstd_ref.data(), rows,
                                 cols, eps);
  kernels::cpu::rms_norm_backward(x.data(), stride, w.data(), rstd_ref.data(), dy.data(),
                                  dx_ref.data(), dw_ref.data(), rows, cols);
  DeviceBuffer<T> gx_buffer(as_type<T>(x_buffer)), gdy(as_type<T>(dy)), gy(rows * cols),
      gdx(rows * cols);
  DeviceBuffer<Wt> gw(as_type<Wt>(w)), gdw(cols), gdw_again(cols);
  const T* gx = gx_buffer.get() + lead;
  DeviceBuffer<float> grstd(rows);
  kernels::cuda::rms_norm_forward<T, Wt>(gx, stride, gw.get(), gy.get(), grstd.get(), rows, cols,
                                         eps, cuda::stream());
  checks.expect("y", mismatch_report(as_float(gy.download()), y_ref, rtol, 1e-5 * max_abs(y_ref)));
  checks.expect("rstd", mismatch_report(grstd.download(), rstd_ref, 1e-5, 0));
  // The backward reads the CPU's rstd, so it is checked on its own.
  DeviceBuffer<float> grstd_ref(rstd_ref);
  DeviceBuffer<float> workspace((kernels::cuda::rms_norm_backward_workspace_bytes(rows, cols) + 3) /
                                4);
  for (Wt* dw : {gdw.get(), gdw_again.get()})
    kernels::cuda::rms_norm_backward<T, Wt>(gx, stride, gw.get(), grstd_ref.get(), gdy.get(),
                                            gdx.get(), dw, rows, cols, workspace.get(),
                                            cuda::stream());
  checks.expect("dx",
                mismatch_report(as_float(gdx.download()), dx_ref, rtol, 1e-5 * max_abs(dx_ref)));
  const std::vector<float> dw = as_float(gdw.download());
  checks.expect("dweight", mismatch_report(dw, dw_ref, dw_rtol, 1e-5 * max_abs(dw_ref)));
  checks.expect("dweight again", mismatch_report(as_float(gdw_again.download()), dw, 0, 0));
}

// ---- softmax ----
// float: expf on the device (2 ulp) against the host's, sums in another order: 1e-5.
template <typename T>
void run_softmax(int64_t rows, int64_t cols, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(rows + cols));
  const std::vector<float> x = random_input<T>(rng, rows * cols, -5.f, 5.f);
  const std::vector<float> dy = random_input<T>(rng, rows * cols);
  const double rtol = is_bf16<T>() ? kBf16Rounding : 1e-5;
  std::vector<float> y_ref(rows * cols), dx_ref(rows * cols);
  kernels::cpu::softmax_forward<float>(x.data(), y_ref.data(), rows, cols);
  // Both backward passes read the CPU's y, in the kernel's type.
  const std::vector<float> y_in = is_bf16<T>() ? round_bf16(y_ref) : y_ref;
  kernels::cpu::softmax_backward<float>(y_in.data(), dy.data(), dx_ref.data(), rows, cols);
  DeviceBuffer<T> gx(as_type<T>(x)), gy(rows * cols), gy_in(as_type<T>(y_in)), gdy(as_type<T>(dy)),
      gdx(rows * cols);
  kernels::cuda::softmax_forward<T>(gx.get(), gy.get(), rows, cols, cuda::stream());
  checks.expect("y", mismatch_report(as_float(gy.download()), y_ref, rtol, 1e-7));
  kernels::cuda::softmax_backward<T>(gy_in.get(), gdy.get(), gdx.get(), rows, cols, cuda::stream());
  checks.expect("dx",
                mismatch_report(as_float(gdx.download()), dx_ref, rtol, 1e-5 * max_abs(dx_ref)));
}

// ---- activations ----
// float: expf on the device (2 ulp) against the host's: 1e-5 relative, 1e-7 near zero.
// n is not a multiple of a vector group (10007 = 16 k + 7). `out_offset`: the outputs start one
// element into their buffers, so no operand of any op may take 16-byte accesses.
template <typename T>
void run_activations(int64_t out_offset, Checks& checks) {
  std::mt19937 rng(21);
  const int64_t n = 10007;
  const std::vector<float> a = random_input<T>(rng, n, -6.f, 6.f);
  const std::vector<float> b = random_input<T>(rng, n, -2.f, 2.f);
  const std::vector<float> dy = random_input<T>(rng, n);
  const double rtol = is_bf16<T>() ? kBf16Rounding : 1e-5, atol = 1e-7;
  std::vector<float> r1(n), r2(n);
  DeviceBuffer<T> ga(as_type<T>(a)), gb(as_type<T>(b)), gdy(as_type<T>(dy)), out1(out_offset + n),
      out2(out_offset + n);
  T *g1 = out1.get() + out_offset, *g2 = out2.get() + out_offset;
  auto got = [&](const DeviceBuffer<T>& out) { return as_float(out.download(out_offset)); };
  const cudaStream_t s = cuda::stream();

  kernels::cpu::silu_forward<float>(a.data(), r1.data(), n);
  kernels::cuda::silu_forward<T>(ga.get(), g1, n, s);
  checks.expect("silu", mismatch_report(got(out1), r1, rtol, atol));
  kernels::cpu::silu_backward<float>(a.data(), dy.data(), r1.data(), n);
  kernels::cuda::silu_backward<T>(ga.get(), gdy.get(), g1, n, s);
  checks.expect("silu dx", mismatch_report(got(out1), r1, rtol, atol));

  kernels::cpu::swiglu_forward<float>(a.data(), b.data(), r1.data(), n);
  kernels::cuda::swiglu_forward<T>(ga.get(), gb.get(), g1, n, s);
  checks.expect("swiglu", mismatch_report(got(out1), r1, rtol, atol));
  kernels::cpu::swiglu_backward<float>(a.data(), b.data(), dy.data(), r1.data(), r2.data(), n);
  kernels::cuda::swiglu_backward<T>(ga.get(), gb.get(), gdy.get(), g1, g2, n, s);
  checks.expect("swiglu dgate", mismatch_report(got(out1), r1, rtol, atol));
  checks.expect("swiglu dup", mismatch_report(got(out2), r2, rtol, atol));

  kernels::cpu::sigmoid_forward<float>(a.data(), r1.data(), n);
  kernels::cuda::sigmoid_forward<T>(ga.get(), g1, n, s);
  checks.expect("sigmoid", mismatch_report(got(out1), r1, rtol, atol));
  // The backward reads y: feed both sides the CPU's, in the kernel's type.
  const std::vector<float> y = is_bf16<T>() ? round_bf16(r1) : r1;
  DeviceBuffer<T> gy(as_type<T>(y));
  kernels::cpu::sigmoid_backward<float>(y.data(), dy.data(), r1.data(), n);
  kernels::cuda::sigmoid_backward<T>(gy.get(), gdy.get(), g1, n, s);
  checks.expect("sigmoid dx", mismatch_report(got(out1), r1, rtol, atol));
}

// ---- embedding ----
// The forward copies rows: exact. The backward adds each row's tokens in token order into fp32,
// as the CPU twin does, so f32 results are exact (tolerance 0: a token order that is not the
// CPU's, e.g. an unstable sort, changes the last bits of the sums); bf16 rounds the same fp32 sums
// once to the nearest even, as the host's bf16 does: equal to the CPU's sums rounded to bf16.
// Shapes: `pool` > 0 draws the ids from that many random rows (else from all rows); `bad_ids`
// inserts tokens with ids outside [0, vocab) among them, which must add to no row; `skewed` gives
// 4 tokens in 5 the id vocab / 8 (as a space dominates byte tokens), so one row sums thousands of
// tokens through many staged chunks and partly filled rounds of loads. An fp32 table under bf16
// rows (Wt = float: master weights) holds values bf16 cannot: the forward must round each copied
// element once, the backward store the fp32 sums unrounded (both exact, tolerance 0).
struct EmbeddingShape {
  int64_t vocab, dim, n, pool;
  bool bad_ids, skewed;
};

template <typename T, typename Wt = T>
void run_embedding(const EmbeddingShape& s, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(s.vocab * 7 + s.dim * 3 + s.n));
  const auto last_row = static_cast<int32_t>(s.vocab - 1);
  std::vector<int32_t> ids = uniform_ints(rng, s.n, 0, last_row);
  if (s.pool > 0) {
    const std::vector<int32_t> rows = uniform_ints(rng, s.pool, 0, last_row);
    for (int32_t& id : ids) id = rows[id % s.pool];
  }
  if (s.skewed)
    for (int32_t& id : ids)
      if (rng() % 5 != 0) id = static_cast<int32_t>(s.vocab / 8);
  const std::vector<float> weight = random_input<Wt>(rng, s.vocab * s.dim);
  const std::vector<float> dout = random_input<T>(rng, s.n * s.dim);
  std::vector<float> out_ref(s.n * s.dim), dw_ref(s.vocab * s.dim);
  kernels::cpu::embedding_forward(ids.data(), weight.data(), out_ref.data(), s.n, s.dim);
  kernels::cpu::embedding_backward(ids.data(), dout.data(), dw_ref.data(), s.n, s.vocab, s.dim);
  if (is_bf16<T>()) out_ref = round_bf16(out_ref);
  if (is_bf16<Wt>()) dw_ref = round_bf16(dw_ref);
  DeviceBuffer<int32_t> gids(ids);
  DeviceBuffer<Wt> gw(as_type<Wt>(weight));
  DeviceBuffer<T> gout(s.n * s.dim);
  kernels::cuda::embedding_forward<Wt, T>(gids.get(), gw.get(), gout.get(), s.n, s.dim,
                                          cuda::stream());
  checks.expect("out", mismatch_report(as_float(gout.download()), out_ref, 0, 0));

  // The backward's tokens: the same and, with bad_ids, these ids (with random gradients) before
  // the first token, after the last and at two points in between.
  const std::vector<int32_t> bad = {-1, static_cast<int32_t>(s.vocab),
                                    std::numeric_limits<int32_t>::max(),
                                    std::numeric_limits<int32_t>::min()};
  const auto n_bad = static_cast<int64_t>(bad.size());
  const std::vector<float> bad_grads = random_input<T>(rng, n_bad * s.dim);
  std::vector<int32_t> tokens;
  std::vector<float> grads;
  for (int64_t i = 0, b = 0; i <= s.n; ++i) {
    for (; s.bad_ids && b < n_bad && b * s.n / (n_bad - 1) == i; ++b) {
      tokens.push_back(bad[b]);
      grads.insert(grads.end(), bad_grads.begin() + b * s.dim, bad_grads.begin() + (b + 1) * s.dim);
    }
    if (i == s.n) break;
    tokens.push_back(ids[i]);
    grads.insert(grads.end(), dout.begin() + i * s.dim, dout.begin() + (i + 1) * s.dim);
  }
  const auto n = static_cast<int64_t>(tokens.size());
  DeviceBuffer<int32_t> gtokens(tokens);
  DeviceBuffer<T> gdout(as_type<T>(grads));
  DeviceBuffer<int64_t> workspace(
      (kernels::cuda::embedding_backward_workspace_bytes(n, s.vocab) + 7) / 8);
  // dweight starts as garbage: the kernel must overwrite every row, unused ones with zeros.
  DeviceBuffer<Wt> gdw(as_type<Wt>(std::vector<float>(s.vocab * s.dim, 3.f)));
  kernels::cuda::embedding_backward<T, Wt>(gtokens.get(), gdout.get(), gdw.get(), n, s.vocab, s.dim,
                                           workspace.get(), cuda::stream());
  checks.expect("dweight", mismatch_report(as_float(gdw.download()), dw_ref, 0, 0));
}

// ---- cross-entropy ----
// lse: fp32 online sums against the CPU's double: 1e-6 relative. The loss sums (double) the rows'
// lse - logit with the fp32 lse: 1e-6, and so does their mean (one more rounding, to fp32, is
// 6e-8). dlogits: expf of fp32 differences: 1e-5. The gradient scale dloss / counted is one
// division of exact values rounded to fp32 on both sides: exact.
template <typename T>
void run_cross_entropy(int64_t rows, int64_t vocab, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(rows * vocab));
  constexpr int64_t kIgnore = -100;
  const std::vector<float> logits = random_input<T>(rng, rows * vocab, -8.f, 8.f);
  std::vector<int32_t> targets = uniform_ints(rng, rows, 0, static_cast<int32_t>(vocab - 1));
  targets[1] = targets[rows - 1] = kIgnore;
  std::vector<float> lse_ref(rows), d_ref(rows * vocab);
  int64_t counted_ref = 0;
  const double loss_ref = kernels::cpu::cross_entropy_forward<float>(
      logits.data(), targets.data(), lse_ref.data(), rows, vocab, kIgnore, &counted_ref);
  const float dloss = 0.75f;
  const auto scale = static_cast<float>(static_cast<double>(dloss) / counted_ref);
  kernels::cpu::cross_entropy_backward<float>(logits.data(), targets.data(), lse_ref.data(), scale,
                                              d_ref.data(), rows, vocab, kIgnore);
  DeviceBuffer<T> glogits(as_type<T>(logits)), gd(rows * vocab);
  DeviceBuffer<int32_t> gtargets(targets);
  DeviceBuffer<float> glse(rows), gmean(1), gdloss(std::vector<float>{dloss}), gscale(1);
  DeviceBuffer<double> gloss(1);
  DeviceBuffer<int64_t> gcounted(1);
  kernels::cuda::cross_entropy_forward<T>(glogits.get(), gtargets.get(), glse.get(), rows, vocab,
                                          kIgnore, gloss.get(), gcounted.get(), cuda::stream());
  checks.expect("lse", mismatch_report(glse.download(), lse_ref, 1e-6, 0));
  checks.expect("loss", mismatch_report(gloss.download(), std::vector<double>{loss_ref}, 1e-6, 0));
  checks.expect("counted", mismatch_report(gcounted.download(), std::vector<int64_t>{counted_ref}));
  kernels::cuda::cross_entropy_mean_loss(gloss.get(), gcounted.get(), gmean.get(), cuda::stream());
  checks.expect(
      "mean loss",
      mismatch_report(gmean.download(),
                      std::vector<float>{static_cast<float>(loss_ref / counted_ref)}, 1e-6, 0));
  kernels::cuda::cross_entropy_grad_scale(gdloss.get(), gcounted.get(), gscale.get(),
                                          cuda::stream());
  checks.expect("scale", mismatch_report(gscale.download(), std::vector<float>{scale}, 0, 0));
  // The backward reads the CPU's lse.
  DeviceBuffer<float> glse_ref(lse_ref);
  kernels::cuda::cross_entropy_backward<T>(glogits.get(), gtargets.get(), glse_ref.get(),
                                           gscale.get(), gd.get(), rows, vocab, kIgnore,
                                           cuda::stream());
  checks.expect("dlogits",
                mismatch_report(as_float(gd.download()), d_ref, is_bf16<T>() ? kBf16Rounding : 1e-5,
                                1e-5 * max_abs(d_ref)));
}

// When every target is ignored the mean is 0 / 0: NaN, computed without reading the count back.
void run_cross_entropy_all_ignored(Checks& checks) {
  const int64_t rows = 4, vocab = 33, ignore = 7;
  const std::vector<int32_t> targets(rows, static_cast<int32_t>(ignore));
  DeviceBuffer<float> glogits(std::vector<float>(rows * vocab, 0.5f)), glse(rows), gmean(1);
  DeviceBuffer<int32_t> gtargets(targets);
  DeviceBuffer<double> gloss(1);
  DeviceBuffer<int64_t> gcounted(1);
  kernels::cuda::cross_entropy_forward<float>(glogits.get(), gtargets.get(), glse.get(), rows,
                                              vocab, ignore, gloss.get(), gcounted.get(),
                                              cuda::stream());
  kernels::cuda::cross_entropy_mean_loss(gloss.get(), gcounted.get(), gmean.get(), cuda::stream());
  checks.expect("counted", mismatch_report(gcounted.download(), std::vector<int64_t>{0}));
  const float mean = gmean.download()[0];
  checks.expect("mean loss", std::isnan(mean) ? "" : "expected NaN, got " + std::to_string(mean));
}

// ---- id check ----
// Integer outputs: exact. The bad ids sit in different blocks (256 ids each), so only the
// atomic minimum makes the first of them win.
void run_sanitize_ids(bool has_ignored, Checks& checks) {
  std::mt19937 rng(has_ignored ? 41 : 42);
  const int64_t n = 1000, vocab = 50, ignored = -100;
  const int32_t replacement = 3;
  std::vector<int32_t> ids = uniform_ints(rng, n, 0, static_cast<int32_t>(vocab - 1));
  ids[900] = 50;
  ids[513] = -3;
  ids[300] = std::numeric_limits<int32_t>::max();
  ids[5] = ids[700] = static_cast<int32_t>(ignored);  // bad unless ignored
  std::vector<int32_t> safe_ref(n);
  uint64_t first_ref = std::numeric_limits<uint64_t>::max();
  for (int64_t i = 0; i < n; ++i) {
    const bool valid = (ids[i] >= 0 && ids[i] < vocab) || (has_ignored && ids[i] == ignored);
    safe_ref[i] = valid ? ids[i] : replacement;
    if (!valid && first_ref == std::numeric_limits<uint64_t>::max())
      first_ref = (static_cast<uint64_t>(i) << 32) | static_cast<uint32_t>(ids[i]);
  }
  DeviceBuffer<int32_t> gids(ids), gsafe(n);
  // Previous contents of the word are kept unless a bad id is lower: start from "none".
  DeviceBuffer<uint64_t> gfirst(std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
  kernels::cuda::sanitize_ids(gids.get(), gsafe.get(), n, vocab, has_ignored, ignored, replacement,
                              gfirst.get(), cuda::stream());
  checks.expect("safe ids", mismatch_report(gsafe.download(), safe_ref));
  const uint64_t first = gfirst.download()[0];
  const std::vector<int64_t> got{kernels::cuda::bad_id_position(first),
                                 kernels::cuda::bad_id_value(first)};
  const std::vector<int64_t> want{has_ignored ? 300 : 5,
                                  has_ignored ? std::numeric_limits<int32_t>::max() : ignored};
  checks.expect("first bad id", mismatch_report(got, want));
  // All valid: the word stays as it was.
  DeviceBuffer<int32_t> gvalid(safe_ref);
  DeviceBuffer<uint64_t> gnone(std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
  kernels::cuda::sanitize_ids(gvalid.get(), gsafe.get(), n, vocab, has_ignored, ignored,
                              replacement, gnone.get(), cuda::stream());
  checks.expect("no bad id", gnone.download()[0] == std::numeric_limits<uint64_t>::max()
                                 ? ""
                                 : "the word changed although every id is valid");
}

template <typename T>
void add_cases(std::vector<KernelCase>& cases) {
  const std::string t = " " + type_name<T>();
  for (auto [pad, rope_dim] : {std::pair<int64_t, int64_t>{4, 16}, {8, 16}, {8, 12}})
    for (bool interleave : {true, false})
      for (bool in_place : {false, true})
        cases.push_back({std::string("rope") + t + (interleave ? " interleaved" : " halves") +
                             " pad " + std::to_string(pad) + " rope_dim " +
                             std::to_string(rope_dim) + (in_place ? " in place" : ""),
                         [=](Checks& c) { run_rope<T>(interleave, in_place, pad, rope_dim, c); }});
  // Contiguous rows (300 columns: 16-byte packs in f32, elements in bf16; 4103 and 7: elements),
  // rows of a narrow (MLA's c_kv: 512 of each 576-wide kv_a row: packs), an odd stride
  // (elements); 300 rows: 3 chunks of dweight partials, a warp per row (2 or 3 packs per lane);
  // 4096 columns: a block per row (512 or 1024 packs); rows one element past 16-byte alignment.
  for (auto [rows, cols, stride, lead] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{37, 300, 300, 0},
        {5, 4103, 4103, 0},
        {1, 7, 7, 0},
        {37, 512, 576, 0},
        {21, 300, 333, 0},
        {300, 264, 264, 0},
        {3, 4096, 4096, 0},
        {40, 256, 256, 1}})
    cases.push_back({"rms_norm" + t + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                         (stride != cols ? " row stride " + std::to_string(stride) : "") +
                         (lead != 0 ? " misaligned" : ""),
                     [=](Checks& c) { run_rms_norm<T>(rows, cols, stride, lead, c); }});
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{13, 1000}, {4, 9}})
    cases.push_back({"softmax" + t + " " + std::to_string(rows) + "x" + std::to_string(cols),
                     [=](Checks& c) { run_softmax<T>(rows, cols, c); }});
  cases.push_back({"silu swiglu sigmoid" + t, [](Checks& c) { run_activations<T>(0, c); }});
  cases.push_back({"silu swiglu sigmoid" + t + " outputs one element in",
                   [](Checks& c) { run_activations<T>(1, c); }});
  // 17 column tiles; ~1700 tokens on each of 3 rows (5 sort blocks); a large table with few
  // tokens (3 sort passes, most rows zero); tokens repeating 40 rows all over a large table, with
  // bad ids (3 passes over 3 sort blocks); 256 rows, ids of one byte, but bad ids sorted after
  // them in a second pass; ~3300 of 4100 tokens on one of 256 rows (3 column tiles, the last
  // partial); no tokens at all.
  for (const EmbeddingShape& shape : {EmbeddingShape{50, 2100, 700, 0, false, false},
                                      {3, 1000, 5000, 0, false, false},
                                      {70000, 13, 37, 0, false, false},
                                      {70000, 13, 3000, 40, true, false},
                                      {256, 7, 1500, 0, true, false},
                                      {256, 300, 4100, 0, false, true},
                                      {5, 3, 0, 0, false, false}})
    cases.push_back({"embedding" + t + " vocab " + std::to_string(shape.vocab) + " dim " +
                         std::to_string(shape.dim) + " tokens " + std::to_string(shape.n) +
                         (shape.bad_ids ? " with bad ids" : "") + (shape.skewed ? " skewed" : ""),
                     [=](Checks& c) { run_embedding<T>(shape, c); }});
  for (auto [rows, vocab] : {std::pair<int64_t, int64_t>{9, 5003}, {3, 129}})
    cases.push_back({"cross_entropy" + t + " " + std::to_string(rows) + "x" + std::to_string(vocab),
                     [=](Checks& c) { run_cross_entropy<T>(rows, vocab, c); }});
}

// bf16 rows under fp32 weights: RMSNorm on the packed path (a warp per row, rows of a narrow, a
// block per row), the element path and misaligned rows; embedding on the 16-byte path (dim a
// multiple of 8) and the element path, with a skewed id distribution.
void add_master_weight_cases(std::vector<KernelCase>& cases) {
  for (auto [rows, cols, stride, lead] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{300, 264, 264, 0},
        {37, 512, 576, 0},
        {3, 4096, 4096, 0},
        {5, 4103, 4103, 0},
        {40, 256, 256, 1}})
    cases.push_back({"rms_norm bf16 under f32 weight " + std::to_string(rows) + "x" +
                         std::to_string(cols) +
                         (stride != cols ? " row stride " + std::to_string(stride) : "") +
                         (lead != 0 ? " misaligned" : ""),
                     [=](Checks& c) { run_rms_norm<bf16, float>(rows, cols, stride, lead, c); }});
  for (const EmbeddingShape& shape : {EmbeddingShape{50, 2104, 700, 0, false, false},
                                      {256, 300, 4100, 0, false, true},
                                      {70000, 13, 3000, 40, true, false}})
    cases.push_back({"embedding bf16 under f32 table vocab " + std::to_string(shape.vocab) +
                         " dim " + std::to_string(shape.dim) + " tokens " + std::to_string(shape.n),
                     [=](Checks& c) { run_embedding<bf16, float>(shape, c); }});
}

}  // namespace

std::vector<KernelCase> rowwise_cases() {
  std::vector<KernelCase> cases;
  add_cases<float>(cases);
  add_cases<bf16>(cases);
  add_master_weight_cases(cases);
  cases.push_back({"cross_entropy every target ignored", run_cross_entropy_all_ignored});
  for (bool has_ignored : {false, true})
    cases.push_back({std::string("sanitize_ids") + (has_ignored ? " with ignore_index" : ""),
                     [=](Checks& c) { run_sanitize_ids(has_ignored, c); }});
  return cases;
}

}  // namespace latte::test
