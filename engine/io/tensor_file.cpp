#include "engine/io/tensor_file.h"

#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "engine/io/safetensors.h"

namespace latte {

namespace {

Tensor tensor_from_view(const SafetensorsView& v) {
  Tensor t = Tensor::empty(Shape(v.shape), v.dtype);
  if (v.nbytes > 0) std::memcpy(t.raw_data(), v.data, v.nbytes);
  return t;
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;  // keeps the converted copies alive while writing
  std::vector<SafetensorsEntry> entries;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    LATTE_CHECK(t.defined()) << "save " << path << ": tensor '" << name << "' is undefined";
    host.push_back(t.detach().to(Device::CPU).contiguous());
    const Tensor& h = host.back();
    entries.push_back({name, h.dtype(), h.shape().vec(), h.raw_data(), h.nbytes()});
  }
  write_safetensors(path, entries, metadata);
}

NamedTensors load_tensors(const std::string& path) {
  const SafetensorsReader reader = SafetensorsReader::open(path);
  NamedTensors out;
  for (const SafetensorsView& v : reader.tensors()) out.emplace_back(v.name, tensor_from_view(v));
  return out;
}

void load_into(const std::string& path, const NamedTensors& destinations,
               const std::set<std::string>& optional) {
  const SafetensorsReader reader = SafetensorsReader::open(path);
  std::vector<std::string> missing, unexpected, misshapen;
  std::set<std::string> wanted;
  for (const auto& [name, dst] : destinations) {
    wanted.insert(name);
    const SafetensorsView* v = reader.find(name);
    if (!v) {
      if (!optional.count(name)) missing.push_back(name);
      continue;
    }
    if (Shape(v->shape) != dst.shape() || is_floating(v->dtype) != is_floating(dst.dtype())) {
      std::ostringstream s;
      s << name << " (file " << dtype_name(v->dtype) << Shape(v->shape).str() << ", expected "
        << dtype_name(dst.dtype()) << dst.shape().str() << ")";
      misshapen.push_back(s.str());
    }
  }
  for (const SafetensorsView& v : reader.tensors())
    if (!wanted.count(v.name)) unexpected.push_back(v.name);
  if (!missing.empty() || !unexpected.empty() || !misshapen.empty()) {
    std::ostringstream s;
    s << path << ": tensors do not match the model.";
    if (!missing.empty()) s << "\n  missing: " << join(missing);
    if (!unexpected.empty()) s << "\n  unexpected: " << join(unexpected);
    if (!misshapen.empty()) s << "\n  misshapen: " << join(misshapen);
    LATTE_FAIL() << s.str();
  }
  NoGradGuard no_grad;
  for (const auto& [name, dst] : destinations) {
    const SafetensorsView* v = reader.find(name);
    Tensor target = dst;
    if (v) target.copy_(tensor_from_view(*v));
  }
}

}  // namespace latte
