#include "engine/dist/mpi_communicator.h"

#include <climits>

#include "engine/dist/mpi_check.h"
#include "engine/dist/mpi_session.h"

namespace latte {

namespace {

template <typename T>
void divide_all(const Tensor& t, int divisor) {
  T* p = t.data<T>();
  const int64_t n = t.numel();
  const T d = static_cast<T>(divisor);
#pragma omp parallel for schedule(static) if (n > (int64_t(1) << 16))
  for (int64_t i = 0; i < n; ++i) p[i] /= d;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() : rank_(MpiSession::rank()), world_size_(MpiSession::world_size()) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }

  void allreduce_sum(std::vector<double>& values) override {
    LATTE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size()), MPI_DOUBLE,
                                  MPI_SUM, MPI_COMM_WORLD));
  }

  void allreduce_sum(std::vector<int64_t>& values) override {
    LATTE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size()), MPI_INT64_T,
                                  MPI_SUM, MPI_COMM_WORLD));
  }

  // Every sum starts at once (MPI_Iallreduce), then each tensor is divided by the world size.
  void allreduce_mean(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors) check_tensor(t);
    std::vector<MPI_Request> requests(tensors.size(), MPI_REQUEST_NULL);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      LATTE_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), count_of(t.numel()),
                                     t.dtype() == DType::F32 ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM,
                                     MPI_COMM_WORLD, &requests[i]));
    }
    LATTE_MPI_CHECK(
        MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE));
    for (const Tensor& t : tensors) {
      if (t.dtype() == DType::F32)
        divide_all<float>(t, world_size_);
      else
        divide_all<double>(t, world_size_);
    }
  }

 private:
  static int count_of(int64_t n) {
    LATTE_CHECK(n <= INT_MAX) << "MPI communicator: " << n
                              << " elements in one reduction, more than MPI's int count holds";
    return static_cast<int>(n);
  }

  static void check_tensor(const Tensor& t) {
    LATTE_CHECK(t.device() == Device::CPU)
        << "MPI communicator: allreduce_mean of " << t.describe()
        << ": it reduces CPU tensors; CUDA tensors need NCCL (latte built with CUDA and NCCL)";
    LATTE_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64)
        << "MPI communicator: allreduce_mean of " << t.describe() << ": expects f32 or f64";
    LATTE_CHECK(t.is_contiguous())
        << "MPI communicator: allreduce_mean of " << t.describe() << ": not contiguous";
  }

  int rank_;
  int world_size_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace latte
