// The launch environment (what mpirun / mpiexec / srun tell a process through its variables) and
// the communicator a process gets from it when no MPI session runs.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "engine/dist/distributed.h"
#include "engine/dist/launch_environment.h"
#include "tests/support/error_text.h"

namespace latte {
namespace {

using test::error_of;

LaunchEnvironment read(const std::map<std::string, std::string>& vars) {
  return read_launch_environment([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

// Sets a variable for the life of the object and restores what was there.
class ScopedVariable {
 public:
  ScopedVariable(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedVariable() {
    if (old_.empty())
      unsetenv(name_);
    else
      setenv(name_, old_.c_str(), 1);
  }
  ScopedVariable(const ScopedVariable&) = delete;
  ScopedVariable& operator=(const ScopedVariable&) = delete;

 private:
  const char* name_;
  std::string old_;
};

}  // namespace

TEST_CASE("a process started without a launcher is rank 0 of an unknown world, not launched") {
  const LaunchEnvironment env = read({});
  CHECK_FALSE(env.launched);
  CHECK_FALSE(env.world_size.has_value());
  CHECK(env.rank == 0);
  CHECK_FALSE(env.local_rank.has_value());
}

TEST_CASE("Open MPI, MPICH and PMIx launch variables give world size, rank and local rank") {
  const LaunchEnvironment ompi = read({{"OMPI_COMM_WORLD_SIZE", "4"},
                                       {"OMPI_COMM_WORLD_RANK", "3"},
                                       {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                       {"PMIX_RANK", "3"}});
  CHECK(ompi.launched);
  CHECK(ompi.world_size == 4);
  CHECK(ompi.rank == 3);
  CHECK(ompi.local_rank == 1);
  CHECK(ompi.size_variable == "OMPI_COMM_WORLD_SIZE");

  const LaunchEnvironment mpich =
      read({{"PMI_SIZE", "2"}, {"PMI_RANK", "1"}, {"MPI_LOCALRANKID", "0"}});
  CHECK(mpich.launched);
  CHECK(mpich.world_size == 2);
  CHECK(mpich.rank == 1);
  CHECK(mpich.local_rank == 0);
  CHECK(mpich.size_variable == "PMI_SIZE");

  const LaunchEnvironment pmix = read({{"PMIX_RANK", "5"}});
  CHECK(pmix.launched);
  CHECK_FALSE(pmix.world_size.has_value());
  CHECK(pmix.rank == 5);
}

TEST_CASE("malformed launch variables are errors naming the variable") {
  CHECK_CONTAINS(error_of([] {
                   read({{"OMPI_COMM_WORLD_SIZE", "two"}});
                 }),
                 "OMPI_COMM_WORLD_SIZE='two' is not an integer >= 1");
  CHECK_CONTAINS(error_of([] { read({{"PMI_SIZE", "0"}}); }), "PMI_SIZE='0'");
  CHECK_CONTAINS(error_of([] {
                   read({{"OMPI_COMM_WORLD_RANK", "-1"}});
                 }),
                 "OMPI_COMM_WORLD_RANK='-1' is not an integer >= 0");
  CHECK_CONTAINS(error_of([] {
                   read({{"OMPI_COMM_WORLD_LOCAL_RANK", "1x"}});
                 }),
                 "OMPI_COMM_WORLD_LOCAL_RANK='1x'");
  CHECK_CONTAINS(error_of([] {
                   read({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "2"}});
                 }),
                 "rank 2 is not below OMPI_COMM_WORLD_SIZE=2");
}

TEST_CASE("without a launcher the communicator is the single-process one") {
  const auto comm = make_communicator();
  CHECK(comm->world_size() == 1);
  CHECK(comm->rank() == 0);
  CHECK(comm->is_root());
}

TEST_CASE("one of several launched processes without MPI running gets an error naming why") {
  const ScopedVariable size("OMPI_COMM_WORLD_SIZE", "2");
  const ScopedVariable rank("OMPI_COMM_WORLD_RANK", "1");
  const std::string message = error_of([] { make_communicator(); });
  CHECK_CONTAINS(message, "started as process 1 of 2 (OMPI_COMM_WORLD_SIZE)");
#ifdef LATTE_WITH_MPI
  CHECK_CONTAINS(message, "no MPI session was started");
#else
  CHECK_CONTAINS(message, "latte was built without MPI");
  CHECK_CONTAINS(message, "-DLATTE_MPI=ON");
#endif
}

}  // namespace latte
