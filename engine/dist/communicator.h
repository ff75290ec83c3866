// The one interface every cross-sample reduction of training goes through (gradients, eval
// losses, MoE load counts), so data parallelism plugs in without touching the trainer. The
// single-process communicator is a no-op; multi-process ones (MPI on CPUs, NCCL on GPUs)
// implement the same calls.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace latte {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_root() const { return rank() == 0; }

  // Element-wise sums across ranks, in place.
  virtual void allreduce_sum(std::vector<double>& values) = 0;
  virtual void allreduce_sum(std::vector<int64_t>& values) = 0;
  // Averages each tensor across ranks, in place (gradients). All of them in one call, so an
  // implementation can batch the transfers; every rank passes the same shapes in the same order.
  virtual void allreduce_mean(const std::vector<Tensor>& tensors) = 0;
};

// rank 0 of 1: every reduction is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace latte
