// Entry point of latte_mpi_tests, which runs under `mpirun -np 3` (ctest does that): every rank
// runs the same test cases, in the same order, meeting in the same collectives. The checks are
// non-fatal (CHECK), so a failure on one rank does not leave the others waiting in a collective.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "engine/dist/distributed.h"
#include "engine/dist/launch_environment.h"

int main(int argc, char** argv) {
  if (!latte::launch_environment().launched) {
    std::fprintf(stderr, "latte_mpi_tests: run me under an MPI launcher (mpirun -np 3 ...)\n");
    return 2;
  }
  latte::DistributedSession session;
  doctest::Context context(argc, argv);
  return context.run();
}
