// The MoE ops (engine/ops/moe_ops.h) end to end on CUDA against the CPU: router scores, expert
// selection, dispatch with and without capacity drops, gather, the expert MLPs, combine and both
// balance losses; the forward values, the dispatch plan and the gradient of every input, with
// token rows in f32 and in bf16 (the router stays f32 on the device), the expert weights in the
// rows' dtype or as f32 master weights.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/ops.h"
#include "engine/ops/moe_ops.h"

namespace latte::test {

namespace {

constexpr int64_t kSeqs = 3, kSeqLen = 16, kTokens = kSeqs * kSeqLen, kDim = 32, kInter = 24;
constexpr double kSeqAlpha = 0.01, kSwitchAlpha = 0.02;

struct Layer {
  const char* name;
  ops::RouterScoring scoring;
  ops::RouterSpec spec;
  double capacity_factor;
};

ops::RouterSpec spec(int64_t e, int64_t k, ops::RouterTopkMethod method, int64_t n_group,
                     int64_t topk_group, bool norm, double scale) {
  ops::RouterSpec s;
  s.n_experts = e, s.top_k = k, s.method = method, s.n_group = n_group;
  s.topk_group = topk_group, s.norm_topk_prob = norm, s.routed_scaling_factor = scale;
  return s;
}

// Selection compares single scores (greedy, group max, s + bias), never sums of scores, so the
// device's expf (an ulp away from the host's) cannot reorder two experts: see make_inputs.
const Layer kLayers[] = {
    {"sigmoid group_limited_greedy dropless", ops::RouterScoring::kSigmoid,
     spec(16, 4, ops::RouterTopkMethod::kGroupLimitedGreedy, 4, 2, true, 2.5), 0.0},
    {"sigmoid noaux_tc with bias dropless", ops::RouterScoring::kSigmoid,
     spec(8, 2, ops::RouterTopkMethod::kNoauxTc, 1, 1, true, 1.0), 0.0},
    {"softmax greedy capacity 1.0", ops::RouterScoring::kSoftmax,
     spec(8, 3, ops::RouterTopkMethod::kGreedy, 1, 1, false, 1.0), 1.0},
};

// Inputs, f32 on the CPU: 0 logits [N, E], 1 x [N, d], 2 correction bias [E] (not trained), then
// gate [I, d], up [I, d], down [d, I] of each expert. Logits lie on a grid of 1/4 and the bias on
// one of 1/64: equal logits tie exactly on both devices (broken by the lower index) and distinct
// ones give scores far more than an ulp apart. Row inputs (x, expert weights) are rounded to
// `rows`, so that both devices read the same values.
std::vector<Tensor> make_inputs(const Layer& layer, DType rows) {
  std::mt19937 rng(static_cast<unsigned>(layer.spec.n_experts * 10 + layer.spec.top_k));
  const int64_t e = layer.spec.n_experts;
  std::vector<float> logits = uniform(rng, kTokens * e, -2.f, 2.f);
  for (float& l : logits) l = std::round(l * 4.f) / 4.f;
  std::vector<float> bias = uniform(rng, e, -0.1f, 0.1f);
  for (float& b : bias) b = std::round(b * 64.f) / 64.f;
  auto row_input = [&](const Shape& shape, float range) {
    return Tensor::from_vector(uniform(rng, shape.numel(), -range, range), shape)
        .to(rows)
        .to(DType::F32);
  };
  std::vector<Tensor> in = {Tensor::from_vector(logits, {kTokens, e}),
                            row_input({kTokens, kDim}, 1.f), Tensor::from_vector(bias, {e})};
  const float w_range = 1.f / std::sqrt(static_cast<float>(kDim));
  for (int64_t i = 0; i < e; ++i) {
    in.push_back(row_input({kInter, kDim}, w_range));
    in.push_back(row_input({kInter, kDim}, w_range));
    in.push_back(row_input({kDim, kInter}, w_range));
  }
  return in;
}

bool trained(size_t input) {
  return input != 2;  // the correction bias is a buffer
}

// The inputs on `device` as fresh leaves: x in `rows`, the expert weights in `weights` (`rows`,
// or f32 master weights), logits and bias f32.
std::vector<Tensor> place(const std::vector<Tensor>& in, Device device, DType rows, DType weights) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < in.size(); ++i) {
    const DType dtype = (i == 0 || i == 2) ? DType::F32 : i == 1 ? rows : weights;
    Tensor t = in[i].detach().to(dtype).to(device).contiguous();
    if (trained(i)) t.set_requires_grad(true);
    out.push_back(t);
  }
  return out;
}

struct Outputs {
  Tensor y, seq_loss, switch_loss, expert_ids;
  ops::MoeDispatchPlan plan;
};

// The MoE layer of models/moe.cpp over the ops, then backward of
// Σ y·upstream + seq_aux_loss + switch_aux_loss.
Outputs run(const std::vector<Tensor>& in, const Layer& layer, const Tensor& upstream) {
  const int64_t e = layer.spec.n_experts;
  const Tensor scores = ops::moe_router_scores(in[0], layer.scoring);
  const ops::RouterChoice choice = ops::moe_select_experts(scores, in[2], layer.spec);
  Outputs out;
  out.expert_ids = choice.expert_ids;
  out.plan = ops::moe_dispatch(choice.expert_ids, e, layer.capacity_factor);
  ops::MoeExpertWeights weights;
  for (int64_t i = 0; i < e; ++i) {
    weights.gate_proj.push_back(in[3 + 3 * i]);
    weights.up_proj.push_back(in[4 + 3 * i]);
    weights.down_proj.push_back(in[5 + 3 * i]);
  }
  const Tensor routed = ops::moe_expert_mlps(ops::moe_gather(in[1], out.plan), out.plan, weights);
  out.y = ops::moe_combine(routed, choice.weights, out.plan);
  out.seq_loss = ops::moe_seq_aux_loss(scores, choice.expert_ids, kSeqs, kSeqAlpha);
  out.switch_loss = ops::moe_switch_aux_loss(scores, choice.expert_ids, kSwitchAlpha);
  const Tensor weighted = ops::sum(ops::mul(out.y.to(DType::F32), upstream.to(out.y.device())));
  ops::add(ops::add(weighted, out.seq_loss), out.switch_loss).backward();
  return out;
}

// "" when gpu matches cpu within rtol·|cpu| + atol_scale·max|cpu| element by element.
std::string compare(const Tensor& gpu, const Tensor& cpu, double rtol, double atol_scale) {
  const std::vector<float> want = cpu.to_vector<float>();
  return mismatch_report(gpu.to_vector<float>(), want, rtol, atol_scale * max_abs(want));
}

void check_layer(const Layer& layer, DType rows, DType weights) {
  CAPTURE(layer.name);
  CAPTURE(dtype_name(rows));
  CAPTURE(dtype_name(weights));
  cuda::init();
  const std::vector<Tensor> base = make_inputs(layer, rows);
  std::mt19937 rng(7);
  const Tensor upstream = Tensor::from_vector(uniform(rng, kTokens * kDim), {kTokens, kDim});
  const std::vector<Tensor> cpu_in = place(base, Device::CPU, DType::F32, DType::F32);
  const std::vector<Tensor> gpu_in = place(base, Device::CUDA, rows, weights);
  const Outputs cpu = run(cpu_in, layer, upstream);
  const Outputs gpu = run(gpu_in, layer, upstream);
  REQUIRE(gpu.y.device() == Device::CUDA);
  if (layer.capacity_factor > 0) REQUIRE(cpu.plan->dropped > 0);

  // Selection and dispatch: integer bookkeeping on identical scores, exact.
  CHECK(mismatch_report(gpu.expert_ids.to_vector<int32_t>(), cpu.expert_ids.to_vector<int32_t>())
            .empty());
  CHECK(gpu.plan->tokens_per_expert == cpu.plan->tokens_per_expert);
  CHECK(gpu.plan->expert_offsets == cpu.plan->expert_offsets);
  CHECK(gpu.plan->dropped == cpu.plan->dropped);
  CHECK(mismatch_report(gpu.plan->sorted_assignment.to_vector<int64_t>(),
                        cpu.plan->sorted_assignment.to_vector<int64_t>())
            .empty());
  CHECK(mismatch_report(gpu.plan->assignment_position.to_vector<int64_t>(),
                        cpu.plan->assignment_position.to_vector<int64_t>())
            .empty());

  // The losses read only the f32 scores and ids: per-token terms in double on both sides,
  // 1e-6 (as the kernel cases).
  const std::string seq = compare(gpu.seq_loss, cpu.seq_loss, 1e-6, 0);
  CHECK_MESSAGE(seq.empty(), "seq_aux_loss: " << seq);
  const std::string sw = compare(gpu.switch_loss, cpu.switch_loss, 1e-6, 0);
  CHECK_MESSAGE(sw.empty(), "switch_aux_loss: " << sw);

  // f32: cuBLAS and OpenBLAS sum in other orders and the device's expf is an ulp off; through at
  // most four chained products of <= 32 terms that is a few 1e-6 of each output's scale: 3e-5.
  // bf16 rows: the device rounds gate/up, hidden, the expert outputs and y (and, backward, dy,
  // d hidden, d gate/up and the gradients) to bf16, up to six roundings of <= 3.9e-3 each: 5e-2.
  const bool bf16 = rows == DType::BF16;
  const double tol = bf16 ? 5e-2 : 3e-5;
  const std::string y = compare(gpu.y, cpu.y, tol, tol);
  CHECK_MESSAGE(y.empty(), "y: " << y);
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!trained(i)) continue;
    CAPTURE(i);
    REQUIRE(cpu_in[i].grad().defined());
    REQUIRE(gpu_in[i].grad().defined());
    CHECK(gpu_in[i].grad().dtype() == gpu_in[i].dtype());
    const std::string g = compare(gpu_in[i].grad(), cpu_in[i].grad(), tol, tol);
    CHECK_MESSAGE(g.empty(), "gradient of input " << i << ": " << g);
  }
}

}  // namespace

TEST_CASE("MoE ops on CUDA compute the CPU's values, plan and gradients (f32 rows)") {
  for (const Layer& layer : kLayers) check_layer(layer, DType::F32, DType::F32);
}

TEST_CASE("MoE ops on CUDA with bf16 rows and an f32 router match the CPU on the same values") {
  for (const Layer& layer : kLayers) check_layer(layer, DType::BF16, DType::BF16);
}

// Mixed precision as the model trains: bf16 rows, f32 master expert weights whose gradients come
// out in f32 (the tolerance stays bf16's: the rows and intermediates are still rounded).
TEST_CASE("MoE ops on CUDA with bf16 rows and f32 master expert weights match the CPU") {
  for (const Layer& layer : kLayers) check_layer(layer, DType::BF16, DType::F32);
}

}  // namespace latte::test

namespace latte::test {

// The dispatch's counts reach the host through pinned memory behind an event, with the
// while_counting work issued in between: the plan matches the CPU's for 8 and then 64 experts
// (the pinned buffer grows), the work issued meanwhile ran (its result is checked), and a
// dispatch from inside that work is an error naming the reason, not a hang or a clobbered buffer.
TEST_CASE("moe_dispatch on CUDA downloads its counts while other work runs") {
  std::mt19937 rng(41);
  for (const int64_t e : {int64_t{8}, int64_t{64}}) {
    CAPTURE(e);
    std::vector<int32_t> id_values(kTokens * 2);
    for (int32_t& id : id_values) id = static_cast<int32_t>(rng() % e);
    const Tensor ids = Tensor::from_vector(id_values, Shape{kTokens, 2});
    const Tensor x = Tensor::from_vector(uniform(rng, 4096, -1.f, 1.f), Shape{4096});
    Tensor doubled;
    const ops::MoeDispatchPlan gpu = ops::moe_dispatch(
        ids.to(Device::CUDA), e, 0.0, [&] { doubled = ops::scale(x.to(Device::CUDA), 2.0); });
    const ops::MoeDispatchPlan cpu = ops::moe_dispatch(ids, e, 0.0);
    CHECK(gpu->expert_offsets == cpu->expert_offsets);
    CHECK(gpu->tokens_per_expert == cpu->tokens_per_expert);
    CHECK(gpu->sorted_assignment.to_vector<int64_t>() ==
          cpu->sorted_assignment.to_vector<int64_t>());
    REQUIRE(doubled.defined());
    CHECK(compare(doubled, ops::scale(x, 2.0), 0, 0).empty());
  }
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 1, 1, 0}, Shape{2, 2});
  const Tensor gpu_ids = ids.to(Device::CUDA);
  CHECK_THROWS_WITH_AS(
      ops::moe_dispatch(gpu_ids, 2, 0.0, [&] { ops::moe_dispatch(gpu_ids, 2, 0.0); }),
      doctest::Contains("called again before an earlier download returned"), Error);
  // The buffer is free again after the error.
  CHECK(ops::moe_dispatch(gpu_ids, 2, 0.0)->expert_offsets == std::vector<int64_t>{0, 2, 4});
}

}  // namespace latte::test
