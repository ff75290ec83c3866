// average_gradients against a stand-in for a second rank: which gradients are reduced, the zeros
// for parameters this rank's batch did not reach, and nothing at all in one process.
#include <doctest/doctest.h>

#include <vector>

#include "engine/dist/average_gradients.h"
#include "engine/tensor.h"

namespace latte {
namespace {

// Rank 0 of 2. The other rank reached the parameters flagged in `other_reached` and holds the
// gradients `other_grads` (by parameter index, f32, empty where it holds none): allreduce_sum
// adds its flags, allreduce_mean averages with its gradients in the order the flags say.
class TwoRankStandIn final : public Communicator {
 public:
  TwoRankStandIn(std::vector<int64_t> other_reached, std::vector<std::vector<float>> other_grads)
      : other_reached_(std::move(other_reached)), other_grads_(std::move(other_grads)) {}

  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void allreduce_sum(std::vector<double>&) override { FAIL("unexpected double reduction"); }
  void allreduce_sum(std::vector<int64_t>& values) override {
    REQUIRE(values.size() == other_reached_.size());
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] += other_reached_[i];
      if (values[i] > 0) reduced_order_.push_back(i);
    }
  }
  void allreduce_mean(const std::vector<Tensor>& tensors) override {
    REQUIRE(tensors.size() == reduced_order_.size());
    for (size_t k = 0; k < tensors.size(); ++k) {
      // A parameter the other rank did not reach: it reduces zeros for it.
      const std::vector<float>& other = other_grads_[reduced_order_[k]];
      float* p = tensors[k].data<float>();
      for (size_t i = 0; i < static_cast<size_t>(tensors[k].numel()); ++i)
        p[i] = (p[i] + (other.empty() ? 0.f : other[i])) / 2;
    }
    ++mean_calls;
  }
  int mean_calls = 0;

 private:
  std::vector<int64_t> other_reached_;
  std::vector<std::vector<float>> other_grads_;
  std::vector<size_t> reduced_order_;
};

Tensor parameter(int64_t n) {
  Tensor p = Tensor::zeros({n});
  p.set_requires_grad(true);
  return p;
}

}  // namespace

TEST_CASE("gradients are averaged across ranks, a parameter unreached here counting as zero") {
  // a: reached on both ranks; b: only on the other rank; c: only here; d: on neither.
  std::vector<Tensor> params = {parameter(2), parameter(3), parameter(1), parameter(2)};
  params[0].set_grad(Tensor::from_vector(std::vector<float>{2, 4}, {2}));
  params[2].set_grad(Tensor::from_vector(std::vector<float>{6}, {1}));
  TwoRankStandIn comm({1, 1, 0, 0}, {{6, 8}, {1, -3, 5}, {}, {}});
  average_gradients(params, comm);
  CHECK(comm.mean_calls == 1);
  CHECK(params[0].grad().to_vector<float>() == std::vector<float>{4, 6});
  REQUIRE(params[1].grad().defined());
  CHECK(params[1].grad().to_vector<float>() == std::vector<float>{0.5f, -1.5f, 2.5f});
  CHECK(params[2].grad().to_vector<float>() == std::vector<float>{3});
  CHECK_FALSE(params[3].grad().defined());
}

TEST_CASE("in one process average_gradients leaves every gradient as it is") {
  class OneRank final : public Communicator {
   public:
    int rank() const override { return 0; }
    int world_size() const override { return 1; }
    void allreduce_sum(std::vector<double>&) override { FAIL("no reduction expected"); }
    void allreduce_sum(std::vector<int64_t>&) override { FAIL("no reduction expected"); }
    void allreduce_mean(const std::vector<Tensor>&) override { FAIL("no reduction expected"); }
  } comm;
  std::vector<Tensor> params = {parameter(2), parameter(1)};
  params[0].set_grad(Tensor::from_vector(std::vector<float>{1, -2}, {2}));
  average_gradients(params, comm);
  CHECK(params[0].grad().to_vector<float>() == std::vector<float>{1, -2});
  CHECK_FALSE(params[1].grad().defined());
}

}  // namespace latte
