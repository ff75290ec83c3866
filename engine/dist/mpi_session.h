// MpiSession: MPI for the life of a process. Construction initializes MPI (MPI_Init_thread,
// funneled: only the main thread calls MPI) and makes MPI_COMM_WORLD return errors, so they
// surface as latte::Error; destruction finalizes it. At most one per process, ever (MPI cannot
// be initialized again after MPI_Finalize). Built only with MPI (LATTE_WITH_MPI).
#pragma once

namespace latte {

class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Whether a session is alive in this process.
  static bool active();
  // MPI_COMM_WORLD's size and this process's rank in it (a session must be active).
  static int world_size();
  static int rank();
  // This process's rank among the processes of its node (MPI_COMM_TYPE_SHARED). Collective:
  // every process of the job must call it.
  static int node_local_rank();
  // Ends every process of the job with `exit_code` (MPI_Abort); does not return.
  [[noreturn]] static void abort_job(int exit_code);
};

}  // namespace latte
