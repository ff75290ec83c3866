#include "engine/dist/distributed.h"

#include <optional>

#include "engine/dist/launch_environment.h"
#include "engine/error.h"

#ifdef LATTE_WITH_MPI
#include "engine/dist/mpi_communicator.h"
#include "engine/dist/mpi_session.h"
#endif
#ifdef LATTE_WITH_NCCL
#include "engine/cuda/nccl_communicator.h"
#endif
#ifdef LATTE_WITH_CUDA
#include "engine/cuda/cuda_runtime.h"
#endif

namespace latte {

namespace {

#ifdef LATTE_WITH_MPI
bool several_mpi_processes() {
  return MpiSession::active() && MpiSession::world_size() > 1;
}
#endif

}  // namespace

struct DistributedSession::State {
#ifdef LATTE_WITH_MPI
  std::optional<MpiSession> mpi;
#endif
};

DistributedSession::DistributedSession() : state_(std::make_unique<State>()) {
  const LaunchEnvironment env = launch_environment();
  if (!env.launched) return;
#ifdef LATTE_WITH_CUDA
  if (env.local_rank) cuda::select_device_for_local_rank(*env.local_rank);
#endif
#ifdef LATTE_WITH_MPI
  state_->mpi.emplace();
#ifdef LATTE_WITH_CUDA
  if (!env.local_rank) cuda::select_device_for_local_rank(MpiSession::node_local_rank());
#endif
#endif
}

DistributedSession::~DistributedSession() = default;

void DistributedSession::abort_job([[maybe_unused]] int exit_code) {
#ifdef LATTE_WITH_MPI
  if (several_mpi_processes()) MpiSession::abort_job(exit_code);
#endif
}

std::unique_ptr<Communicator> make_communicator() {
#ifdef LATTE_WITH_MPI
  if (several_mpi_processes()) {
#ifdef LATTE_WITH_NCCL
    return cuda::make_nccl_communicator();
#else
    return make_mpi_communicator();
#endif
  }
  const char* missing = "no MPI session was started (DistributedSession)";
#else
  const char* missing =
      "latte was built without MPI (install libopenmpi-dev and rebuild with -DLATTE_MPI=ON)";
#endif
  const LaunchEnvironment env = launch_environment();
  LATTE_CHECK(env.world_size.value_or(1) == 1 && env.rank == 0)
      << "started as process " << env.rank << " of "
      << (env.world_size ? std::to_string(*env.world_size) + " (" + env.size_variable + ")"
                         : std::string("several"))
      << " by an MPI launcher, but " << missing << "; run a single process or use an MPI build";
  return make_single_process_communicator();
}

}  // namespace latte
