#include "support/op_table.h"

#include <cmath>
#include <utility>

#include "engine/ops.h"
#include "engine/random.h"

namespace latte::test {

namespace {

// i32 ids next to `like` (on its device).
Tensor ids(const std::vector<int32_t>& values, const Shape& shape, const Tensor& like) {
  return Tensor::from_vector(values, shape).to(like.device());
}

// RoPE tables [length, half] with angle position * 0.7^i, in the dtype and on the device of `like`.
struct RopeTestTables {
  Tensor cos, sin;
};
RopeTestTables rope_test_tables(const Tensor& like, int64_t length, int64_t half) {
  std::vector<double> c, s;
  for (int64_t pos = 0; pos < length; ++pos)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos) * std::pow(0.7, static_cast<double>(i));
      c.push_back(std::cos(angle));
      s.push_back(std::sin(angle));
    }
  const Shape shape{length, half};
  return {Tensor::from_vector(c, shape, like.dtype()).to(like.device()),
          Tensor::from_vector(s, shape, like.dtype()).to(like.device())};
}

std::vector<OpCase> build() {
  using V = const std::vector<Tensor>&;
  std::vector<OpCase> c;
  // elementwise and broadcasting
  c.push_back({"add", {{3, 4}, {3, 4}}, [](V x) { return ops::add(x[0], x[1]); }});
  c.push_back({"add_bias_broadcast", {{2, 3, 4}, {4}}, [](V x) { return ops::add(x[0], x[1]); }});
  c.push_back({"add_column_broadcast", {{3, 1}, {3, 5}}, [](V x) { return ops::add(x[0], x[1]); }});
  c.push_back({"sub_broadcast", {{2, 3, 4}, {3, 1}}, [](V x) { return ops::sub(x[0], x[1]); }});
  c.push_back({"mul", {{5, 3}, {5, 3}}, [](V x) { return ops::mul(x[0], x[1]); }});
  c.push_back(
      {"mul_broadcast_leading", {{4, 2, 3}, {2, 3}}, [](V x) { return ops::mul(x[0], x[1]); }});
  c.push_back({"mul_transposed_view", {{3, 4}, {4, 3}}, [](V x) {
                 return ops::mul(x[0], x[1].transpose(0, 1));
               }});
  c.push_back({"scale", {{7}}, [](V x) { return ops::scale(x[0], -2.5); }});
  c.push_back({"silu", {{3, 5}}, [](V x) { return ops::silu(x[0]); }});
  c.push_back({"sigmoid", {{3, 5}}, [](V x) { return ops::sigmoid(x[0]); }});
  c.push_back({"swiglu", {{4, 6}, {4, 6}}, [](V x) { return ops::swiglu(x[0], x[1]); }});
  c.push_back({"swiglu_views", {{6, 4}, {4, 12}}, [](V x) {
                 return ops::swiglu(x[0].transpose(0, 1), x[1].narrow(1, 3, 6));
               }});
  // reductions
  c.push_back({"sum", {{3, 4}}, [](V x) { return ops::sum(x[0]); }});
  c.push_back({"mean_of_view", {{4, 3}}, [](V x) { return ops::mean(x[0].transpose(0, 1)); }});
  c.push_back({"sum_to", {{2, 3, 4}}, [](V x) { return ops::sum_to(x[0], Shape{3, 1}); }});
  c.push_back({"broadcast_to", {{3, 1}}, [](V x) { return ops::broadcast_to(x[0], {2, 3, 4}); }});
  c.push_back({"expand_then_mul", {{1, 4}, {3, 4}}, [](V x) {
                 return ops::mul(ops::expand(x[0], {3, 4}), x[1]);
               }});
  // matrix products
  c.push_back({"matmul", {{3, 4}, {4, 5}}, [](V x) { return ops::matmul(x[0], x[1]); }});
  c.push_back({"matmul_trans_a", {{4, 3}, {4, 5}}, [](V x) {
                 return ops::matmul(x[0], x[1], true, false);
               }});
  c.push_back({"matmul_trans_b", {{3, 4}, {5, 4}}, [](V x) {
                 return ops::matmul(x[0], x[1], false, true);
               }});
  c.push_back({"matmul_trans_both", {{4, 3}, {5, 4}}, [](V x) {
                 return ops::matmul(x[0], x[1], true, true);
               }});
  c.push_back({"matmul_batched", {{2, 3, 3, 4}, {2, 3, 4, 2}}, [](V x) {
                 return ops::matmul(x[0], x[1]);
               }});
  c.push_back(
      {"matmul_shared_b", {{2, 3, 4}, {4, 5}}, [](V x) { return ops::matmul(x[0], x[1]); }});
  c.push_back({"matmul_shared_b_trans_a", {{2, 4, 3}, {5, 4}}, [](V x) {
                 return ops::matmul(x[0], x[1], true, true);
               }});
  c.push_back({"matmul_transposed_views", {{4, 3}, {5, 4}}, [](V x) {
                 return ops::matmul(x[0].transpose(0, 1), x[1].transpose(0, 1));
               }});
  c.push_back({"matmul_permuted_batch", {{3, 2, 4}, {2, 4, 3}}, [](V x) {
                 return ops::matmul(x[0].permute({1, 0, 2}), x[1]);
               }});
  c.push_back({"linear", {{5, 4}, {3, 4}}, [](V x) { return ops::linear(x[0], x[1]); }});
  c.push_back({"linear_bias_3d", {{2, 3, 4}, {6, 4}, {6}}, [](V x) {
                 return ops::linear(x[0], x[1], x[2]);
               }});
  c.push_back({"linear_strided_input", {{4, 10}, {3, 5}}, [](V x) {
                 return ops::linear(x[0].narrow(1, 2, 5), x[1]);
               }});
  // shape ops
  c.push_back({"reshape_view", {{2, 6}}, [](V x) { return x[0].view({3, 4}).transpose(0, 1); }});
  c.push_back({"reshape_copy", {{3, 4}}, [](V x) { return x[0].transpose(0, 1).reshape({2, 6}); }});
  c.push_back({"permute", {{2, 3, 4}}, [](V x) { return x[0].permute({2, 0, 1}).contiguous(); }});
  c.push_back({"narrow_select", {{4, 5}}, [](V x) { return x[0].narrow(1, 1, 3).select(0, 2); }});
  c.push_back({"unsqueeze_squeeze", {{3, 4}}, [](V x) {
                 return x[0].unsqueeze(1).squeeze(1).unsqueeze(0);
               }});
  c.push_back({"concat", {{2, 3}, {2, 5}, {2, 1}}, [](V x) {
                 return ops::concat({x[0], x[1], x[2]}, 1);
               }});
  c.push_back({"concat_views_dim0", {{3, 2}, {2, 4}}, [](V x) {
                 return ops::concat({x[0].transpose(0, 1), x[1]}, 1);
               }});
  c.push_back({"split", {{3, 7}}, [](V x) {
                 auto parts = ops::split(x[0], {2, 4, 1}, 1);
                 return ops::mul(parts[0], parts[1].narrow(1, 1, 2));
               }});
  // neural-network ops
  c.push_back({"embedding_repeated_ids", {{6, 4}}, [](V x) {
                 return ops::embedding(ids({1, 3, 1, 5, 3, 1}, {2, 3}, x[0]), x[0]);
               }});
  c.push_back({"rms_norm", {{3, 8}, {8}}, [](V x) { return ops::rms_norm(x[0], x[1], 1e-6); }});
  c.push_back({"rms_norm_view", {{8, 3}, {8}}, [](V x) {
                 return ops::rms_norm(x[0].transpose(0, 1), x[1], 1e-5);
               }});
  // Rows 12 apart, read in place (MLA's c_kv); then rows that do not fold into one stride.
  c.push_back({"rms_norm_narrow_view", {{2, 3, 12}, {8}}, [](V x) {
                 return ops::rms_norm(x[0].narrow(2, 2, 8), x[1], 1e-6);
               }});
  c.push_back({"rms_norm_narrow_rows", {{2, 3, 12}, {8}}, [](V x) {
                 return ops::rms_norm(x[0].narrow(1, 0, 2).narrow(2, 2, 8), x[1], 1e-6);
               }});
  c.push_back({"softmax", {{4, 6}}, [](V x) { return ops::softmax(x[0]); }});
  c.push_back(
      {"softmax_3d_view", {{3, 2, 5}}, [](V x) { return ops::softmax(x[0].transpose(0, 1)); }});
  c.push_back({"cross_entropy", {{2, 3, 7}}, [](V x) {
                 return ops::cross_entropy(x[0], ids({0, 6, 2, 3, 3, 1}, {2, 3}, x[0]));
               }});
  c.push_back({"cross_entropy_ignore_index", {{5, 4}}, [](V x) {
                 return ops::cross_entropy(x[0], ids({1, -100, 3, -100, 0}, {5}, x[0]));
               }});
  c.push_back({"dropout", {{4, 8}}, [](V x) {
                 Generator gen(7);  // same mask on every evaluation
                 return ops::dropout(x[0], 0.3, gen);
               }});
  // attention: GQA (4 query heads over 2 kv heads), causal with fewer queries than keys, and
  // strided operands (q a transposed view, k and v slices of one projection)
  for (const auto& [name, kernel] : {std::pair{"naive", ops::AttentionKernel::kNaive},
                                     std::pair{"flash", ops::AttentionKernel::kFlash}}) {
    c.push_back({std::string("attention_") + name + "_gqa_causal",
                 {{2, 3, 4, 8}, {2, 5, 2, 8}, {2, 5, 2, 6}},
                 [kernel](V x) { return ops::attention(x[0], x[1], x[2], 0.4, true, kernel); }});
    c.push_back(
        {std::string("attention_") + name + "_views", {{2, 4, 5, 8}, {2, 5, 2, 14}}, [kernel](V x) {
           return ops::attention(x[0].transpose(1, 2), x[1].narrow(3, 0, 8), x[1].narrow(3, 8, 6),
                                 0.4, false, kernel);
         }});
  }
  // rope, with a table offset and on a slice of the head dim
  c.push_back({"rope_interleave_offset", {{2, 3, 2, 6}}, [](V x) {
                 const RopeTestTables t = rope_test_tables(x[0], 5, 3);
                 return ops::rope(x[0], t.cos, t.sin, 2, true);
               }});
  c.push_back({"rope_halves_view", {{2, 3, 2, 10}}, [](V x) {
                 const RopeTestTables t = rope_test_tables(x[0], 3, 3);
                 return ops::rope(x[0].narrow(3, 4, 6), t.cos, t.sin, 0, false);
               }});
  c.push_back({"rope_pass_through_prefix", {{2, 3, 2, 10}}, [](V x) {
                 const RopeTestTables t = rope_test_tables(x[0], 4, 3);
                 return ops::rope(x[0], t.cos, t.sin, 1, true, 4);
               }});
  return c;
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = build();
  return cases;
}

std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, unsigned seed) {
  std::vector<Tensor> out;
  Generator gen(seed * 7919u + static_cast<unsigned>(c.name.size()));
  for (const Shape& s : c.inputs) {
    Tensor t = rand_uniform(s, gen, -1.0 + c.input_offset, 1.0 + c.input_offset, dtype);
    t.set_requires_grad(true);
    out.push_back(t);
  }
  return out;
}

}  // namespace latte::test
