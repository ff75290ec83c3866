// What an MPI launcher (mpirun / mpiexec of Open MPI or MPICH, srun with PMIx) tells a process it
// started, read from the environment before MPI is initialized: whether a launcher started it,
// the number of processes, this one's rank and its rank among the processes of its node.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace latte {

struct LaunchEnvironment {
  bool launched = false;  // an MPI launcher started this process
  // From OMPI_COMM_WORLD_SIZE / OMPI_COMM_WORLD_RANK (Open MPI) or PMI_SIZE / PMI_RANK (MPICH);
  // a PMIx launcher that sets PMIX_RANK alone leaves world_size unknown.
  std::optional<int> world_size;
  int rank = 0;
  // OMPI_COMM_WORLD_LOCAL_RANK (Open MPI) or MPI_LOCALRANKID (MPICH); unknown otherwise.
  std::optional<int> local_rank;
  std::string size_variable;  // the variable world_size came from, for messages
};

// Reads the variables through `getenv` (which returns nullptr for an unset one). Throws
// latte::Error naming the variable when one holds something other than a non-negative integer
// (or a world size below 1).
LaunchEnvironment read_launch_environment(const std::function<const char*(const char*)>& getenv);

// The launch environment of this process (std::getenv).
LaunchEnvironment launch_environment();

}  // namespace latte
