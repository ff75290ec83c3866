// The MPI communicator: data parallelism across processes on CPUs. Host vectors and CPU tensors
// (f32, f64) are summed or averaged over MPI_COMM_WORLD. Built only with MPI (LATTE_WITH_MPI).
#pragma once

#include <memory>

#include "engine/dist/communicator.h"

namespace latte {

// Needs an active MpiSession. allreduce_mean throws latte::Error, before any transfer, for a
// tensor that is not a contiguous f32 or f64 CPU tensor.
std::unique_ptr<Communicator> make_mpi_communicator();

}  // namespace latte
