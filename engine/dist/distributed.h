// How a latte process joins a data-parallel job started by an MPI launcher
// (`mpirun -np N latte train ...`): the session that owns MPI for the life of the process, the
// communicator training reduces through, and ending the whole job after an error.
#pragma once

#include <memory>

#include "engine/dist/communicator.h"

namespace latte {

// Created once, first thing in main. When an MPI launcher started the process it points the
// CUDA runtime at the GPU of the process's rank on its node (before CUDA initializes) and
// initializes MPI (builds with MPI), finalizing it on destruction; otherwise it does nothing, so
// a plain `latte train` needs no launcher.
class DistributedSession {
 public:
  DistributedSession();
  ~DistributedSession();
  DistributedSession(const DistributedSession&) = delete;
  DistributedSession& operator=(const DistributedSession&) = delete;

  // When this process is one of several in an MPI job: ends all of them with `exit_code`
  // (MPI_Abort), so no rank waits forever in a collective for one that failed. Returns
  // otherwise.
  static void abort_job(int exit_code);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The communicator of this process: the single-process one unless a DistributedSession runs
// MPI with several processes; then NCCL for CUDA tensors and MPI for the rest (builds with CUDA
// and NCCL), or MPI for everything. Throws latte::Error naming the launcher's variable when the
// process was started as one of several but MPI is missing.
std::unique_ptr<Communicator> make_communicator();

}  // namespace latte
