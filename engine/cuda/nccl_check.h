// LATTE_NCCL_CHECK(call): throws latte::Error naming the NCCL call, file:line, NCCL's error
// string and its last detailed message (e.g. "Duplicate GPU detected" when two ranks share a
// GPU) when the call does not return ncclSuccess (as LATTE_CUDA_CHECK does for CUDA).
#pragma once

#include <nccl.h>

#include "engine/error.h"

#define LATTE_NCCL_CHECK(call)                                                               \
  do {                                                                                       \
    const ncclResult_t latte_nccl_status_ = (call);                                          \
    LATTE_CHECK(latte_nccl_status_ == ncclSuccess)                                           \
        << "NCCL error " << static_cast<int>(latte_nccl_status_) << " ("                     \
        << ncclGetErrorString(latte_nccl_status_) << ") in " #call " at " << __FILE__ << ":" \
        << __LINE__ << ": " << ncclGetLastError(nullptr);                                    \
  } while (0)
