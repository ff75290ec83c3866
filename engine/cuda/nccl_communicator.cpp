#include "engine/cuda/nccl_communicator.h"

#include "engine/cuda/cuda_runtime.h"
#include "engine/cuda/nccl_check.h"
#include "engine/dist/mpi_check.h"
#include "engine/dist/mpi_communicator.h"

namespace latte::cuda {

namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator() : host_(make_mpi_communicator()) {}
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_->rank(); }
  int world_size() const override { return host_->world_size(); }
  void allreduce_sum(std::vector<double>& values) override { host_->allreduce_sum(values); }
  void allreduce_sum(std::vector<int64_t>& values) override { host_->allreduce_sum(values); }

  void allreduce_mean(const std::vector<Tensor>& tensors) override {
    std::vector<Tensor> on_host, on_device;
    for (const Tensor& t : tensors) {
      if (t.device() == Device::CPU) {
        on_host.push_back(t);
        continue;
      }
      LATTE_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16)
          << "NCCL communicator: allreduce_mean of " << t.describe() << ": expects f32 or bf16";
      LATTE_CHECK(t.is_contiguous())
          << "NCCL communicator: allreduce_mean of " << t.describe() << ": not contiguous";
      on_device.push_back(t);
    }
    if (!on_host.empty()) host_->allreduce_mean(on_host);
    if (on_device.empty()) return;
    ncclComm_t comm = nccl_comm();
    LATTE_NCCL_CHECK(ncclGroupStart());
    for (const Tensor& t : on_device)
      LATTE_NCCL_CHECK(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                                     t.dtype() == DType::F32 ? ncclFloat32 : ncclBfloat16, ncclAvg,
                                     comm, stream()));
    LATTE_NCCL_CHECK(ncclGroupEnd());
  }

 private:
  ncclComm_t nccl_comm() {
    if (comm_ != nullptr) return comm_;
    init();  // the CUDA runtime, on this rank's device
    ncclUniqueId id{};
    if (rank() == 0) LATTE_NCCL_CHECK(ncclGetUniqueId(&id));
    LATTE_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
    LATTE_NCCL_CHECK(ncclCommInitRank(&comm_, world_size(), id, rank()));
    return comm_;
  }

  std::unique_ptr<Communicator> host_;  // MPI: host vectors and CPU tensors
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator() {
  return std::make_unique<NcclCommunicator>();
}

}  // namespace latte::cuda
