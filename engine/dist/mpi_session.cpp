#include "engine/dist/mpi_session.h"

#include <cstdlib>

#include "engine/dist/mpi_check.h"

namespace latte {

namespace {

bool g_active = false;

void require_active(const char* what) {
  LATTE_CHECK(g_active) << what << ": no MPI session is active";
}

}  // namespace

MpiSession::MpiSession() {
  LATTE_CHECK(!g_active) << "MpiSession: MPI is already initialized in this process";
  int finalized = 0;
  LATTE_MPI_CHECK(MPI_Finalized(&finalized));
  LATTE_CHECK(!finalized) << "MpiSession: MPI was finalized and cannot be initialized again";
  int provided = 0;
  LATTE_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  const int status = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (status != MPI_SUCCESS || provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    LATTE_MPI_CHECK(status);
    LATTE_FAIL() << "MPI_Init_thread: the MPI library provides thread level " << provided
                 << ", latte needs MPI_THREAD_FUNNELED (OpenMP threads run next to MPI)";
  }
  g_active = true;
}

MpiSession::~MpiSession() {
  g_active = false;
  MPI_Finalize();
}

bool MpiSession::active() {
  return g_active;
}

int MpiSession::world_size() {
  require_active("MpiSession::world_size");
  int size = 0;
  LATTE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  return size;
}

int MpiSession::rank() {
  require_active("MpiSession::rank");
  int rank = 0;
  LATTE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  return rank;
}

int MpiSession::node_local_rank() {
  require_active("MpiSession::node_local_rank");
  MPI_Comm node = MPI_COMM_NULL;
  LATTE_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int rank = 0;
  const int status = MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  LATTE_MPI_CHECK(status);
  return rank;
}

void MpiSession::abort_job(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]] if it did
}

}  // namespace latte
