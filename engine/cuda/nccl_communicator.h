// The NCCL communicator: data parallelism across processes with one GPU each. CUDA tensors (f32,
// bf16) are averaged with ncclAllReduce (ncclAvg) on latte's stream, all tensors of one call in
// one NCCL group, which NCCL runs as one fused operation; host vectors and CPU tensors go
// through MPI. The NCCL communicator itself is created by the first call that reduces CUDA
// tensors (a collective call, so every rank gets there together): rank 0 makes the unique id
// and broadcasts it over MPI, then ncclCommInitRank on the CUDA runtime's device. A CPU run
// never touches the GPU. Built only with CUDA, NCCL and MPI (LATTE_WITH_NCCL).
#pragma once

#include <memory>

#include "engine/dist/communicator.h"

namespace latte::cuda {

// Needs an active MpiSession. allreduce_mean throws latte::Error, before any transfer, for a
// CUDA tensor that is not contiguous f32 or bf16 (CPU tensors: as the MPI communicator).
std::unique_ptr<Communicator> make_nccl_communicator();

}  // namespace latte::cuda
