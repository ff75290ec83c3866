// LATTE_MPI_CHECK(call): throws latte::Error naming the MPI call, file:line and MPI's error
// string when the call does not return MPI_SUCCESS (MPI_COMM_WORLD returns errors instead of
// aborting: mpi_session.cpp). For the .cpp files of engine/dist and engine/cuda that call MPI.
#pragma once

#include <mpi.h>

#include <string>

#include "engine/error.h"

namespace latte::detail {

inline std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "unknown MPI error";
  return std::string(text, static_cast<size_t>(length));
}

}  // namespace latte::detail

#define LATTE_MPI_CHECK(call)                                                               \
  do {                                                                                      \
    const int latte_mpi_status_ = (call);                                                   \
    LATTE_CHECK(latte_mpi_status_ == MPI_SUCCESS)                                           \
        << "MPI error (" << ::latte::detail::mpi_error_string(latte_mpi_status_) << ") in " \
        << #call " at " << __FILE__ << ":" << __LINE__;                                     \
  } while (0)
