// Tensor: a strided view of device memory plus the autograd slot. Copying a Tensor copies a
// handle (shared ownership), never data. Views (reshape, transpose, permute, narrow) share the
// storage; differentiable operations live in engine/ops.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"

namespace latte {

class Node;
struct AutogradMeta;

// A block of memory from a device allocator, returned to it when the last tensor lets go.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // Changes whenever the memory may have been written: Tensor::raw_data() (every pointer handed
  // to a kernel, reads included) calls note_access(). Versions come from one process-wide
  // counter, so two storages never share one. What compute copies of parameters are checked
  // against (AutogradMeta::compute_copy).
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void note_access() const;

 private:
  void* data_;
  size_t bytes_;
  Device device_;
  mutable std::atomic<uint64_t> version_;
};

class Tensor {
 public:
  Tensor() = default;

  // ---- creation (contiguous) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::CPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU) {
    return full(shape, 1.0, dtype, device);
  }
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::CPU) {
    return full(Shape{}, value, dtype, device);
  }
  // A CPU tensor holding `values` (converted to `dtype`), shaped `shape`.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            DType dtype = dtype_of<T>::value);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const { return shape().size(); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape().numel(); }
  const Shape& strides() const;
  int64_t stride(int d) const;
  int64_t offset() const;  // in elements, from the storage start
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  // Whether this handle is the only way to its memory: no other handle, view or tensor shares its
  // storage, and it is contiguous. Such a tensor can be taken over and written in place.
  bool is_sole_owner() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string describe() const;  // "f32[2, 3] cpu"
  // True when both tensors view the same storage.
  bool shares_storage_with(const Tensor& other) const;

  // ---- data access (CPU or device pointer at the view's first element) ----
  void* raw_data() const;
  template <typename T>
  T* data() const {
    LATTE_CHECK(dtype() == dtype_of<T>::value)
        << "tensor data: requested " << dtype_name(dtype_of<T>::value) << " pointer from "
        << describe();
    return static_cast<T*>(raw_data());
  }
  // Copies to a host vector of T (any source dtype and device, any strides).
  template <typename T>
  std::vector<T> to_vector() const;
  double item() const;  // value of a one-element tensor as double

  // ---- views and copies (differentiable; see engine/ops/view_ops.cpp) ----
  Tensor reshape(const Shape& shape) const;  // a view when the strides allow, else a copy
  Tensor view(const Shape& shape) const;     // a view; error when the strides do not allow it
  Tensor transpose(int a, int b) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor select(int dim, int64_t index) const;  // narrow + drop the dimension
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor contiguous() const;  // this tensor when already contiguous
  Tensor clone() const;       // always a contiguous copy
  // A parameter (a leaf that requires grad, covering its whole storage) cast to a narrower dtype
  // keeps the cast as its compute copy and returns it again, without a copy, until the
  // parameter's memory is accessed (Storage::version); the optimizer rewrites the copy as it
  // updates the parameter. A pointer to a parameter taken before a cast and written after it
  // bypasses that check: write parameters through Tensor methods or a fresh data() pointer.
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place (not recorded by autograd; for optimizers, init, accumulation) ----
  void fill_(double value);
  void copy_(const Tensor& src);  // same shape; converts dtype, crosses devices

  // ---- autograd ----
  bool requires_grad() const;
  // Marks a leaf tensor as a parameter whose gradient accumulates into grad().
  Tensor& set_requires_grad(bool enabled);
  Tensor grad() const;  // undefined until a backward pass reached this leaf
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the gradient (undefined again)
  // The node that produced this tensor, or nullptr for leaves and untracked tensors.
  std::shared_ptr<Node> grad_fn() const;
  // A handle to the same data without autograd history.
  Tensor detach() const;
  // Makes this tensor (and every handle sharing it) hold `value`'s memory, shape and dtype; its
  // autograd metadata (requires_grad, grad) stays. Views taken earlier keep the old memory. How
  // a model's parameters move to another device without changing identity.
  void set_data(const Tensor& value);
  // Backpropagates from this one-element tensor (d self / d self = 1).
  void backward() const;

  // ---- internal: used by ops and the autograd engine ----
  static Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides,
                          int64_t offset);
  const std::shared_ptr<AutogradMeta>& autograd_meta() const;
  void set_autograd_meta(std::shared_ptr<AutogradMeta> meta);
  // The compute copy Tensor::to keeps for this parameter (undefined when it has none), and the
  // mark that it holds the parameter's current values (the optimizer writes both together).
  Tensor compute_copy() const;
  void mark_compute_copy_current() const;
  // This tensor's values in `dtype` without autograd history, for a product that records this
  // tensor itself (mixed precision's master weights): itself when it has the dtype, a parameter's
  // kept compute copy (as Tensor::to keeps it), else a fresh cast.
  Tensor detached_cast(DType dtype) const;

 private:
  struct Impl;
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  const Impl& impl() const;
  // The compute copy of this parameter in `dtype`, cast afresh when missing or stale; undefined
  // when this tensor is not a parameter covering its storage or `dtype` is not narrower.
  Tensor current_compute_copy(DType dtype) const;

  std::shared_ptr<Impl> impl_;
};

// Gradient bookkeeping of a tensor that takes part in autograd.
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                    // leaves: accumulated gradient
  std::shared_ptr<Node> grad_fn;  // non-leaves: the op that produced the tensor
  // Parameters in mixed precision: the parameter cast to a narrower compute dtype by Tensor::to,
  // valid while the parameter's storage version is still compute_copy_version.
  Tensor compute_copy;
  uint64_t compute_copy_version = 0;
};

}  // namespace latte
