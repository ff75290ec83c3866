// MoE cases: the router's logits (bf16 and f32 rows, 16-byte and single-element access, expert
// counts of each bound), router scores, expert selection for every top-k method (with exact
// ties), gate weight gradients, the dispatch permutation with and without capacity drops, gather /
// combine and their backward passes, the balance losses (sequences over several blocks of
// slots), the dispatch's load counts and the correction-bias update.
#include <cmath>
#include <string>
#include <type_traits>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/moe_balance.h"
#include "kernels/cpu/moe_dispatch.h"
#include "kernels/cpu/moe_router_logits.h"
#include "kernels/cpu/moe_routing.h"
#include "kernels/cuda/moe_balance.cuh"
#include "kernels/cuda/moe_dispatch.cuh"
#include "kernels/cuda/moe_router_logits.cuh"
#include "kernels/cuda/moe_routing.cuh"

namespace latte::test {

namespace {

using kernels::cpu::RouterScoring;
using kernels::cpu::RouterSpec;
using kernels::cpu::RouterTopkMethod;

// The router's logits and their gradients against the CPU twin on the same (rounded) rows, in fp32
// on both sides but in other summation orders (lanes and a butterfly; blocks of 128 rows): 1e-5
// of each output's scale for the logits and dw, which sum up to d and N terms; dx: the same, plus
// one rounding to bf16 for bf16 rows. Outputs start as garbage that must be overwritten.
template <typename X>
void run_router_logits(int64_t n, int64_t d, int64_t e, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(n + d + e));
  const std::vector<float> x = random_input<X>(rng, n * d), w = uniform(rng, e * d),
                           dl = uniform(rng, n * e);
  std::vector<float> logits_ref(n * e), dx_ref(n * d), dw_ref(e * d);
  kernels::cpu::router_logits_forward<float, float>(x.data(), w.data(), n, d, e, logits_ref.data());
  kernels::cpu::router_logits_backward<float, float>(dl.data(), x.data(), w.data(), n, d, e,
                                                     dx_ref.data(), dw_ref.data());
  DeviceBuffer<X> gx(as_type<X>(x)), gdx(as_type<X>(random_input<X>(rng, n * d)));
  DeviceBuffer<float> gw(w), gdl(dl), glogits(uniform(rng, n * e)), gdw(uniform(rng, e * d));
  DeviceBuffer<float> workspace(kernels::cuda::router_logits_backward_workspace(n, d, e));
  kernels::cuda::router_logits_forward<X>(gx.get(), gw.get(), n, d, e, glogits.get(),
                                          cuda::stream());
  kernels::cuda::router_logits_backward<X>(gdl.get(), gx.get(), gw.get(), n, d, e, gdx.get(),
                                           gdw.get(), workspace.get(), cuda::stream());
  checks.expect("logits",
                mismatch_report(glogits.download(), logits_ref, 1e-5, 1e-5 * max_abs(logits_ref)));
  const double dx_tol = std::is_same_v<X, float> ? 1e-5 : kBf16Rounding;
  checks.expect(
      "dx", mismatch_report(as_float(gdx.download()), dx_ref, dx_tol, dx_tol * max_abs(dx_ref)));
  checks.expect("dw", mismatch_report(gdw.download(), dw_ref, 1e-5, 1e-5 * max_abs(dw_ref)));
}

// float: expf on the device against the host's and warp sums against serial ones: 1e-6.
void run_router_scores(RouterScoring scoring, Checks& checks) {
  std::mt19937 rng(51);
  const int64_t n = 100, e = 64;
  const std::vector<float> logits = uniform(rng, n * e, -4.f, 4.f);
  const std::vector<float> ds = uniform(rng, n * e);
  std::vector<float> s_ref(n * e), dx_ref = uniform(rng, n * e);  // the backward adds into dx
  DeviceBuffer<float> glogits(logits), gs(n * e), gds(ds), gdx(dx_ref);
  kernels::cpu::router_scores_forward<float>(logits.data(), n, e, scoring, s_ref.data());
  kernels::cuda::router_scores_forward(glogits.get(), n, e, scoring, gs.get(), cuda::stream());
  checks.expect("scores", mismatch_report(gs.download(), s_ref, 1e-6, 1e-8));
  DeviceBuffer<float> gs_ref(s_ref);
  kernels::cpu::router_scores_backward<float>(s_ref.data(), ds.data(), n, e, scoring,
                                              dx_ref.data());
  kernels::cuda::router_scores_backward(gs_ref.get(), gds.get(), n, e, scoring, gdx.get(),
                                        cuda::stream());
  checks.expect("dlogits", mismatch_report(gdx.download(), dx_ref, 1e-6, 1e-7));
}

// Selection and weights run the CPU's float operations in the same order: bit-exact. Scores are
// multiples of 1/32 so that exact ties (broken by the lower index) happen often.
void run_select(const RouterSpec& spec, bool with_bias, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(spec.n_experts * 7 + spec.top_k));
  const int64_t n = 200, e = spec.n_experts, k = spec.top_k;
  std::vector<float> scores = uniform(rng, n * e, 0.f, 1.f);
  for (float& s : scores) s = std::round(s * 32.f) / 32.f;
  std::vector<float> bias = uniform(rng, e, -0.1f, 0.1f);
  for (float& b : bias) b = std::round(b * 64.f) / 64.f;
  std::vector<int32_t> ids_ref(n * k);
  std::vector<float> w_ref(n * k);
  kernels::cpu::select_experts<float>(scores.data(), with_bias ? bias.data() : nullptr, n, spec,
                                      ids_ref.data(), w_ref.data());
  DeviceBuffer<float> gscores(scores), gbias(bias), gw(n * k);
  DeviceBuffer<int32_t> gids(n * k);
  kernels::cuda::select_experts(gscores.get(), with_bias ? gbias.get() : nullptr, n, spec,
                                gids.get(), gw.get(), cuda::stream());
  checks.expect("expert_ids", mismatch_report(gids.download(), ids_ref));
  checks.expect("weights", mismatch_report(gw.download(), w_ref, 0, 0));

  // Gate-weight gradients: the same formula, a fused multiply-add may move an ulp: 1e-6.
  const std::vector<float> dw = uniform(rng, n * k);
  std::vector<float> ds_ref = uniform(rng, n * e);  // added into
  DeviceBuffer<float> gdw(dw), gds(ds_ref);
  DeviceBuffer<int32_t> gids_ref(ids_ref);
  kernels::cpu::expert_weights_backward<float>(scores.data(), ids_ref.data(), dw.data(), n, spec,
                                               ds_ref.data());
  kernels::cuda::expert_weights_backward(gscores.get(), gids_ref.get(), gdw.get(), n, spec,
                                         gds.get(), cuda::stream());
  checks.expect("dscores", mismatch_report(gds.download(), ds_ref, 1e-6, 1e-7));
}

RouterSpec spec(int64_t e, int64_t k, RouterTopkMethod method, int64_t n_group, int64_t topk_group,
                bool norm, double scale) {
  RouterSpec s;
  s.n_experts = e, s.top_k = k, s.method = method, s.n_group = n_group;
  s.topk_group = topk_group, s.norm_topk_prob = norm, s.routed_scaling_factor = scale;
  return s;
}

// Expert ids skewed towards the low experts, so that a capacity drops some.
std::vector<int32_t> skewed_ids(std::mt19937& rng, int64_t n, int64_t k, int64_t e) {
  std::vector<int32_t> ids(n * k);
  std::uniform_real_distribution<double> u(0, 1);
  for (int32_t& id : ids) id = static_cast<int32_t>(static_cast<double>(e) * u(rng) * u(rng));
  return ids;
}

// The permutation is integer bookkeeping: exact.
void run_dispatch(int64_t n, int64_t k, int64_t e, double capacity_factor, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(n + e));
  const std::vector<int32_t> ids = skewed_ids(rng, n, k, e);
  const int64_t capacity = kernels::cpu::expert_capacity(n, k, e, capacity_factor);
  std::vector<int64_t> offsets_ref(e + 1), sorted_ref(n * k), position_ref(n * k);
  const int64_t dropped_ref = kernels::cpu::build_dispatch(
      ids.data(), n, k, e, capacity, offsets_ref.data(), sorted_ref.data(), position_ref.data());
  std::vector<int64_t> load_ref(e, 0);
  kernels::cpu::count_expert_load(ids.data(), n * k, e, load_ref.data());
  DeviceBuffer<int32_t> gids(ids);
  DeviceBuffer<int64_t> goffsets(e + 1), gload(std::vector<int64_t>(e, 5)), gsorted(n * k),
      gposition(n * k), gstatus(2);
  DeviceBuffer<char> workspace(kernels::cuda::build_dispatch_workspace_bytes(n * k, e));
  kernels::cuda::build_dispatch(gids.get(), n, k, e, capacity, goffsets.get(), gload.get(),
                                gsorted.get(), gposition.get(), gstatus.get(), workspace.get(),
                                cuda::stream());
  checks.expect("expert_offsets", mismatch_report(goffsets.download(), offsets_ref));
  checks.expect("load (overwritten)", mismatch_report(gload.download(), load_ref));
  checks.expect("sorted_assignment", mismatch_report(gsorted.download(), sorted_ref));
  checks.expect("assignment_position", mismatch_report(gposition.download(), position_ref));
  checks.expect("status (dropped, invalid)",
                mismatch_report(gstatus.download(), std::vector<int64_t>{dropped_ref, 0}));
}

// An id outside [0, E) is reported in status[1] (the CPU throws).
void run_dispatch_invalid(Checks& checks) {
  const int64_t n = 40, k = 2, e = 8;
  std::vector<int32_t> ids(n * k, 3);
  ids[17] = static_cast<int32_t>(e);
  ids[30] = -1;
  DeviceBuffer<int32_t> gids(ids);
  DeviceBuffer<int64_t> goffsets(e + 1), gload(e), gsorted(n * k), gposition(n * k), gstatus(2);
  DeviceBuffer<char> workspace(kernels::cuda::build_dispatch_workspace_bytes(n * k, e));
  kernels::cuda::build_dispatch(gids.get(), n, k, e, -1, goffsets.get(), gload.get(), gsorted.get(),
                                gposition.get(), gstatus.get(), workspace.get(), cuda::stream());
  checks.expect("status (dropped, invalid)",
                mismatch_report(gstatus.download(), std::vector<int64_t>{0, 2}));
  std::vector<int64_t> load_ref(e, 0);
  load_ref[3] = n * k - 2;  // the two invalid ids are not counted
  checks.expect("load", mismatch_report(gload.download(), load_ref));
}

// gather: a copy, exact. gather backward: the CPU's additions in the same order, exact in float.
// The outputs of gather backward and both combine passes start as other random values on each
// side: both must overwrite them.
// combine: a fused multiply-add per term on the device: 1e-6 (f32); its weight gradient is a dot
// product summed in another order: 1e-5 of the scale. bf16 outputs add one rounding. Rows of
// `dim` elements: 16-byte accesses when the row size is a multiple of 16 bytes (f32 100, bf16
// 104), else one element per access (bf16 100, f32 102).
template <typename T>
void run_gather_combine(double capacity_factor, int64_t dim, Checks& checks) {
  constexpr bool kBf16 = !std::is_same_v<T, float>;
  std::mt19937 rng(static_cast<unsigned>(61 + dim));
  const int64_t n = 300, k = 4, e = 16;
  const std::vector<int32_t> ids = skewed_ids(rng, n, k, e);
  const int64_t capacity = kernels::cpu::expert_capacity(n, k, e, capacity_factor);
  std::vector<int64_t> offsets(e + 1), sorted(n * k), position(n * k);
  kernels::cpu::build_dispatch(ids.data(), n, k, e, capacity, offsets.data(), sorted.data(),
                               position.data());
  const int64_t kept = offsets[e];
  DeviceBuffer<int64_t> goffsets(offsets), gsorted(sorted), gposition(position);
  const double rtol = kBf16 ? kBf16Rounding : 1e-6;

  const std::vector<float> x = random_input<T>(rng, n * dim);
  std::vector<float> xs_ref(kept * dim);
  kernels::cpu::gather_rows<float>(x.data(), sorted.data(), kept, k, dim, xs_ref.data());
  DeviceBuffer<T> gx(as_type<T>(x)), gxs(n * k * dim);
  kernels::cuda::gather_rows<T>(gx.get(), gsorted.get(), goffsets.get() + e, n * k, k, dim,
                                gxs.get(), cuda::stream());
  std::vector<float> xs = as_float(gxs.download());
  xs.resize(kept * dim);
  checks.expect("x_sorted", mismatch_report(xs, xs_ref, 0, 0));

  const std::vector<float> dxs = random_input<T>(rng, kept * dim);
  std::vector<float> dx_ref = random_input<T>(rng, n * dim);  // overwritten
  DeviceBuffer<T> gdxs(as_type<T>(dxs)), gdx(as_type<T>(random_input<T>(rng, n * dim)));
  kernels::cpu::gather_rows_backward<float>(dxs.data(), position.data(), n, k, dim, dx_ref.data());
  kernels::cuda::gather_rows_backward<T>(gdxs.get(), gposition.get(), n, k, dim, gdx.get(),
                                         cuda::stream());
  checks.expect("dx", mismatch_report(as_float(gdx.download()), dx_ref, kBf16 ? rtol : 0, 0));

  const std::vector<float> out = random_input<T>(rng, kept * dim);
  const std::vector<float> w = uniform(rng, n * k, 0.f, 1.f);
  std::vector<float> y_ref = random_input<T>(rng, n * dim);  // overwritten
  DeviceBuffer<T> gout(as_type<T>(out)), gy(as_type<T>(random_input<T>(rng, n * dim)));
  DeviceBuffer<float> gw(w);
  kernels::cpu::combine_forward<float>(out.data(), w.data(), position.data(), n, k, dim,
                                       y_ref.data());
  kernels::cuda::combine_forward<T>(gout.get(), gw.get(), gposition.get(), n, k, dim, gy.get(),
                                    cuda::stream());
  checks.expect("y", mismatch_report(as_float(gy.download()), y_ref, rtol, 1e-6 * max_abs(y_ref)));

  const std::vector<float> dy = random_input<T>(rng, n * dim);
  std::vector<float> dout_ref = random_input<T>(rng, kept * dim), dw_ref = uniform(rng, n * k);
  DeviceBuffer<T> gdy(as_type<T>(dy)), gdout(as_type<T>(random_input<T>(rng, kept * dim)));
  DeviceBuffer<float> gdw(uniform(rng, n * k));
  kernels::cpu::combine_backward<float>(dy.data(), out.data(), w.data(), position.data(), n, k, dim,
                                        dout_ref.data(), dw_ref.data());
  kernels::cuda::combine_backward<T>(gdy.get(), gout.get(), gw.get(), gposition.get(), n, k, dim,
                                     gdout.get(), gdw.get(), cuda::stream());
  checks.expect("d_expert_out", mismatch_report(as_float(gdout.download()), dout_ref, rtol,
                                                1e-6 * max_abs(dout_ref)));
  checks.expect("dweights", mismatch_report(gdw.download(), dw_ref, 1e-5, 1e-5 * max_abs(dw_ref)));
}

// Both sides compute the per-token terms in double from the same float scores: the loss (a
// float) and the gradients (floats) agree to 1e-6.
void run_balance(bool sequence_wise, int64_t len, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>((sequence_wise ? 71 : 72) + len));
  const int64_t seqs = sequence_wise ? 3 : 1, e = 16, k = 4;
  const int64_t n = seqs * len;
  const float alpha = 0.01f, dloss = 0.7f;
  const std::vector<float> scores = uniform(rng, n * e, 0.01f, 1.f);
  const std::vector<int32_t> ids = skewed_ids(rng, n, k, e);
  const std::vector<float> ds_start = uniform(rng, n * e);  // the backward adds into dscores
  std::vector<float> ds_ref = ds_start;
  DeviceBuffer<float> gscores(scores), gloss(1), gdloss(std::vector<float>{dloss}), gds(ds_start);
  DeviceBuffer<int32_t> gids(ids);
  DeviceBuffer<char> workspace(kernels::cuda::balance_loss_workspace_bytes(seqs, len, e));
  const cudaStream_t stream = cuda::stream();
  float loss_ref;
  if (sequence_wise) {
    loss_ref = kernels::cpu::seq_aux_loss_forward<float>(scores.data(), ids.data(), seqs, len, e, k,
                                                         alpha);
    kernels::cpu::seq_aux_loss_backward<float>(scores.data(), ids.data(), seqs, len, e, k, alpha,
                                               dloss, ds_ref.data());
    kernels::cuda::seq_aux_loss_forward(gscores.get(), gids.get(), seqs, len, e, k, alpha,
                                        gloss.get(), workspace.get(), stream);
    kernels::cuda::seq_aux_loss_backward(gscores.get(), gids.get(), seqs, len, e, k, alpha,
                                         gdloss.get(), gds.get(), workspace.get(), stream);
  } else {
    loss_ref =
        kernels::cpu::switch_aux_loss_forward<float>(scores.data(), ids.data(), n, e, k, alpha);
    kernels::cpu::switch_aux_loss_backward<float>(scores.data(), ids.data(), n, e, k, alpha, dloss,
                                                  ds_ref.data());
    kernels::cuda::switch_aux_loss_forward(gscores.get(), gids.get(), n, e, k, alpha, gloss.get(),
                                           workspace.get(), stream);
    kernels::cuda::switch_aux_loss_backward(gscores.get(), gids.get(), n, e, k, alpha, gdloss.get(),
                                            gds.get(), workspace.get(), stream);
  }
  checks.expect("loss", mismatch_report(gloss.download(), std::vector<float>{loss_ref}, 1e-6, 0));
  checks.expect("dscores", mismatch_report(gds.download(), ds_ref, 1e-6, 1e-7));
}

// Integer counts and sign decisions, and one float addition per bias: exact.
void run_bias_update(Checks& checks) {
  std::mt19937 rng(81);
  const int64_t n = 500, k = 6, e = 32;
  const std::vector<int32_t> ids = skewed_ids(rng, n, k, e);
  std::vector<int64_t> load_ref(e, 0);
  kernels::cpu::count_expert_load(ids.data(), n * k, e, load_ref.data());
  const float gamma = 0.001f;
  for (bool balanced : {false, true}) {
    const std::vector<int64_t> load = balanced ? std::vector<int64_t>(e, 7) : load_ref;
    std::vector<float> bias_ref = uniform(rng, e, -0.1f, 0.1f);
    DeviceBuffer<float> gbias(bias_ref);
    DeviceBuffer<int64_t> gl(load);
    kernels::cpu::update_correction_bias<float>(bias_ref.data(), load.data(), e, gamma);
    kernels::cuda::update_correction_bias(gbias.get(), gl.get(), e, gamma, cuda::stream());
    checks.expect(balanced ? "bias (equal loads)" : "bias",
                  mismatch_report(gbias.download(), bias_ref, 0, 0));
  }
}

}  // namespace

std::vector<KernelCase> moe_cases() {
  std::vector<KernelCase> cases;
  for (RouterScoring scoring : {RouterScoring::kSigmoid, RouterScoring::kSoftmax})
    cases.push_back({std::string("router scores ") +
                         (scoring == RouterScoring::kSigmoid ? "sigmoid" : "softmax"),
                     [scoring](Checks& c) { run_router_scores(scoring, c); }});
  const struct {
    const char* name;
    RouterSpec spec;
    bool bias;
  } selections[] = {
      {"greedy", spec(16, 4, RouterTopkMethod::kGreedy, 1, 1, false, 1.0), false},
      {"greedy normalized", spec(64, 6, RouterTopkMethod::kGreedy, 1, 1, true, 2.5), false},
      {"group_limited_greedy", spec(64, 6, RouterTopkMethod::kGroupLimitedGreedy, 8, 3, true, 1.0),
       false},
      {"noaux_tc with bias", spec(256, 8, RouterTopkMethod::kNoauxTc, 8, 4, true, 2.5), true},
      {"noaux_tc without bias", spec(64, 8, RouterTopkMethod::kNoauxTc, 8, 4, false, 1.0), false},
      {"noaux_tc groups of one", spec(8, 2, RouterTopkMethod::kNoauxTc, 8, 4, true, 1.0), true},
      {"noaux_tc all groups kept", spec(32, 4, RouterTopkMethod::kNoauxTc, 4, 4, true, 1.0), true},
  };
  for (const auto& s : selections)
    cases.push_back({std::string("select_experts ") + s.name,
                     [spec = s.spec, bias = s.bias](Checks& c) { run_select(spec, bias, c); }});
  // (N, d, E): 16-byte rows with 8 and 5 experts over several dw blocks; rows that are not
  // 16-byte multiples (single elements); bounds of 16 and 32 experts.
  const int64_t logit_shapes[][3] = {{300, 1024, 8}, {129, 256, 5}, {77, 100, 16}, {64, 200, 32}};
  for (const auto& [n, d, e] : logit_shapes) {
    const std::string shape =
        " N" + std::to_string(n) + " d" + std::to_string(d) + " E" + std::to_string(e);
    cases.push_back({"router_logits f32" + shape,
                     [n = n, d = d, e = e](Checks& c) { run_router_logits<float>(n, d, e, c); }});
    cases.push_back({"router_logits bf16" + shape,
                     [n = n, d = d, e = e](Checks& c) { run_router_logits<bf16>(n, d, e, c); }});
  }
  cases.push_back({"build_dispatch dropless", [](Checks& c) { run_dispatch(1000, 6, 64, 0, c); }});
  cases.push_back(
      {"build_dispatch capacity 1.0", [](Checks& c) { run_dispatch(1000, 6, 64, 1.0, c); }});
  cases.push_back({"build_dispatch capacity 1.25, 300 experts",
                   [](Checks& c) { run_dispatch(777, 8, 300, 1.25, c); }});
  // 18000 assignments: chunk counts scanned over three rounds of 32 chunks.
  cases.push_back({"build_dispatch capacity 1.0, 71 chunks",
                   [](Checks& c) { run_dispatch(3000, 6, 64, 1.0, c); }});
  cases.push_back({"build_dispatch invalid ids", [](Checks& c) { run_dispatch_invalid(c); }});
  cases.push_back(
      {"gather/combine f32 dropless", [](Checks& c) { run_gather_combine<float>(0, 100, c); }});
  cases.push_back({"gather/combine f32 capacity 1.0",
                   [](Checks& c) { run_gather_combine<float>(1.0, 100, c); }});
  cases.push_back({"gather/combine f32 dropless dim 102",
                   [](Checks& c) { run_gather_combine<float>(0, 102, c); }});
  cases.push_back({"gather/combine bf16 capacity 1.0",
                   [](Checks& c) { run_gather_combine<bf16>(1.0, 100, c); }});
  cases.push_back({"gather/combine bf16 dropless dim 104",
                   [](Checks& c) { run_gather_combine<bf16>(0, 104, c); }});
  cases.push_back({"seq_aux_loss", [](Checks& c) { run_balance(true, 50, c); }});
  cases.push_back({"switch_aux_loss", [](Checks& c) { run_balance(false, 150, c); }});
  // 4400 and 6000 slots per sequence: counts over two blocks of 4096 slots.
  cases.push_back({"seq_aux_loss, long sequences", [](Checks& c) { run_balance(true, 1100, c); }});
  cases.push_back({"switch_aux_loss, many tokens", [](Checks& c) { run_balance(false, 1500, c); }});
  cases.push_back({"correction bias update", [](Checks& c) { run_bias_update(c); }});
  return cases;
}

}  // namespace latte::test
