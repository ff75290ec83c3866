#include "engine/tensor.h"

#include <sstream>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/copy.h"

namespace latte {

namespace {
std::atomic<uint64_t> g_storage_versions{0};
uint64_t next_storage_version() {
  return g_storage_versions.fetch_add(1, std::memory_order_relaxed) + 1;
}
}  // namespace

Storage::Storage(size_t bytes, Device device)
    : data_(allocator_for(device).allocate(bytes)),
      bytes_(bytes),
      device_(device),
      version_(next_storage_version()) {}

void Storage::note_access() const {
  version_.store(next_storage_version(), std::memory_order_relaxed);
}

Storage::~Storage() {
  allocator_for(device_).deallocate(data_, bytes_);
}

struct Tensor::Impl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> autograd;
};

const Tensor::Impl& Tensor::impl() const {
  LATTE_CHECK(impl_ != nullptr) << "use of an undefined tensor";
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    LATTE_CHECK(d >= 0) << "tensor: negative dimension in shape " << shape.str();
  auto impl = std::make_shared<Impl>();
  impl->storage = std::make_shared<Storage>(shape.numel() * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, DType dtype) {
  LATTE_CHECK(static_cast<int64_t>(values.size()) == shape.numel())
      << "tensor from_vector: " << values.size() << " values do not fill shape " << shape.str();
  Tensor src = empty(shape, dtype_of<T>::value);
  std::copy(values.begin(), values.end(), src.data<T>());
  return dtype == dtype_of<T>::value ? src : src.to(dtype);
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&, DType);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&, DType);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&, DType);
template Tensor Tensor::from_vector(const std::vector<int64_t>&, const Shape&, DType);

const Shape& Tensor::shape() const {
  return impl().shape;
}
const Shape& Tensor::strides() const {
  return impl().strides;
}
int64_t Tensor::offset() const {
  return impl().offset;
}
DType Tensor::dtype() const {
  return impl().dtype;
}
Device Tensor::device() const {
  return impl().storage->device();
}

int64_t Tensor::size(int d) const {
  const int r = dim();
  LATTE_CHECK(d >= -r && d < r) << "tensor size: dimension " << d << " out of range for "
                                << describe();
  return shape()[d < 0 ? d + r : d];
}

int64_t Tensor::stride(int d) const {
  const int r = dim();
  LATTE_CHECK(d >= -r && d < r) << "tensor stride: dimension " << d << " out of range for "
                                << describe();
  return strides()[d < 0 ? d + r : d];
}

bool Tensor::is_contiguous() const {
  const Impl& i = impl();
  int64_t expected = 1;
  for (int d = i.shape.size() - 1; d >= 0; --d) {
    if (i.shape[d] != 1 && i.strides[d] != expected) return false;
    expected *= i.shape[d];
  }
  return true;
}

bool Tensor::is_sole_owner() const {
  return impl_.use_count() == 1 && impl().storage.use_count() == 1 && is_contiguous();
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  std::ostringstream s;
  std::string dt = dtype_name(dtype());
  for (auto& c : dt) c = static_cast<char>(std::tolower(c));
  s << dt << shape().str() << " " << device_name(device());
  return s.str();
}

bool Tensor::shares_storage_with(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}

void* Tensor::raw_data() const {
  const Impl& i = impl();
  i.storage->note_access();
  return static_cast<char*>(i.storage->data()) + i.offset * dtype_size(i.dtype);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = device() == Device::CPU ? *this : to(Device::CPU);
  std::vector<T> out(numel());
  visit_dtype(dtype(), [&](auto tag) {
    using S = decltype(tag);
    const Shape dst_strides = contiguous_strides(shape());
    kernels::cpu::strided_copy<S, T>(host.data<S>(), host.strides().begin(), out.data(),
                                     dst_strides.begin(), shape().begin(), dim());
  });
  return out;
}
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;
template std::vector<int64_t> Tensor::to_vector() const;

double Tensor::item() const {
  LATTE_CHECK(numel() == 1) << "item: expected a one-element tensor, got " << describe();
  return to_vector<double>()[0];
}

void Tensor::fill_(double value) {
  profiler::Scope timing(profiler::Category::kCopy);
  if (device() != Device::CPU) {
    device_fill(*this, value);
    return;
  }
  LATTE_CHECK(is_contiguous()) << "fill_: needs a contiguous tensor, got a view " << describe();
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    kernels::cpu::fill(data<T>(), numel(), convert_element<T>(value));
  });
}

void Tensor::copy_(const Tensor& src) {
  profiler::Scope timing(profiler::Category::kCopy);
  LATTE_CHECK(src.shape() == shape())
      << "copy_: source " << src.describe() << " does not match destination " << describe();
  if (device() != Device::CPU || src.device() != Device::CPU) {
    device_copy(src, *this);
    return;
  }
  visit_dtype(src.dtype(), [&](auto src_tag) {
    using S = decltype(src_tag);
    visit_dtype(dtype(), [&](auto dst_tag) {
      using D = decltype(dst_tag);
      kernels::cpu::strided_copy<S, D>(src.data<S>(), src.strides().begin(), data<D>(),
                                       strides().begin(), shape().begin(), dim());
    });
  });
}

Tensor Tensor::make_view(const Tensor& base, const Shape& shape, const Shape& strides,
                         int64_t offset) {
  auto impl = std::make_shared<Impl>();
  impl->storage = base.impl().storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const {
  return make_view(*this, shape(), strides(), offset());
}

void Tensor::set_data(const Tensor& value) {
  LATTE_CHECK(impl_ != nullptr && value.defined()) << "set_data: undefined tensor";
  const Impl& v = value.impl();
  impl_->storage = v.storage;
  impl_->offset = v.offset;
  impl_->shape = v.shape;
  impl_->strides = v.strides;
  impl_->dtype = v.dtype;
}

// ---- autograd slot ----

const std::shared_ptr<AutogradMeta>& Tensor::autograd_meta() const {
  return impl().autograd;
}

void Tensor::set_autograd_meta(std::shared_ptr<AutogradMeta> meta) {
  LATTE_CHECK(impl_ != nullptr) << "set_autograd_meta on an undefined tensor";
  impl_->autograd = std::move(meta);
}

Tensor Tensor::current_compute_copy(DType target) const {
  const Impl& i = impl();
  const bool parameter = requires_grad() && grad_fn() == nullptr;
  const bool whole_storage =
      i.offset == 0 && is_contiguous() &&
      static_cast<size_t>(numel()) * dtype_size(i.dtype) == i.storage->bytes();
  if (!parameter || !whole_storage || !is_floating(target) ||
      dtype_size(target) >= dtype_size(i.dtype))
    return Tensor();
  AutogradMeta& meta = *i.autograd;
  const Tensor& held = meta.compute_copy;
  const bool current = held.defined() && held.dtype() == target && held.device() == device() &&
                       held.shape() == shape() && meta.compute_copy_version == i.storage->version();
  if (!current) {
    Tensor copy = empty(shape(), target, device());
    copy.copy_(*this);  // reads this parameter: its version moves, then is recorded
    meta.compute_copy = copy;
    meta.compute_copy_version = i.storage->version();
  }
  return meta.compute_copy;
}

Tensor Tensor::detached_cast(DType target) const {
  if (target == dtype()) return detach();
  const Tensor kept = current_compute_copy(target);
  if (kept.defined()) return kept;
  Tensor out = empty(shape(), target, device());
  out.copy_(detach());
  return out;
}

Tensor Tensor::compute_copy() const {
  return defined() && impl_->autograd ? impl_->autograd->compute_copy : Tensor();
}

void Tensor::mark_compute_copy_current() const {
  LATTE_CHECK(compute_copy().defined())
      << "mark_compute_copy_current: " << describe() << " has no compute copy";
  impl_->autograd->compute_copy_version = impl_->storage->version();
}

bool Tensor::requires_grad() const {
  return defined() && impl_->autograd && impl_->autograd->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool enabled) {
  LATTE_CHECK(grad_fn() == nullptr) << "set_requires_grad: only leaf tensors can be marked; "
                                    << describe() << " was produced by " << grad_fn()->name();
  LATTE_CHECK(!enabled || is_floating(dtype()))
      << "set_requires_grad: only floating-point tensors can require grad, got " << describe();
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  impl_->autograd->requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const {
  return defined() && impl_->autograd ? impl_->autograd->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  LATTE_CHECK(requires_grad()) << "set_grad on a tensor that does not require grad";
  LATTE_CHECK(!grad.defined() || grad.shape() == shape())
      << "set_grad: gradient " << grad.describe() << " does not match " << describe();
  impl_->autograd->grad = grad;
}

void Tensor::zero_grad() {
  if (defined() && impl_->autograd) impl_->autograd->grad = Tensor();
}

std::shared_ptr<Node> Tensor::grad_fn() const {
  return defined() && impl_->autograd ? impl_->autograd->grad_fn : nullptr;
}

void Tensor::backward() const {
  run_backward(*this);
}

}  // namespace latte
