// A latte built without MPI, started as one of several processes (the variables mpirun sets),
// refuses to train alone and names what is missing, instead of silently training a copy per
// process that would write the same files.
#ifndef LATTE_WITH_MPI

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "support/run_command.h"
#include "support/temp_dir.h"

TEST_CASE("train and suite under an MPI launcher without MPI built in name what is missing") {
  latte::test::TempDir tmp;
  const std::string env = "OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 ";
  const std::string config =
      (std::filesystem::path(LATTE_SOURCE_DIR) / "tests/integration/configs/tiny_mha.toml")
          .string();
  for (const std::string& args :
       {"train " + config + " --no-progress --set output.dir=" + tmp.file("run"),
        "suite " + (std::filesystem::path(LATTE_SOURCE_DIR) / "configs/exp3/suite.toml").string() +
            " --scale smoke --no-progress --out " + tmp.file("suite")}) {
    const auto r = latte::test::run_shell(env + "'" + LATTE_BINARY + "' " + args);
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("started as process 0 of 2 (OMPI_COMM_WORLD_SIZE)") != std::string::npos);
    CHECK(r.output.find("latte was built without MPI") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(tmp.file("run")));
  }
}

#endif  // LATTE_WITH_MPI
