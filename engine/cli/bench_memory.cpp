// Benchmark: the memory-bound ops of a training step against a plain copy of the same bytes.
// Each op runs on activations of the gpu scale (cuda: 16384 tokens x hidden 1024, bf16; 16
// heads of 64 for RoPE; a 256-entry byte vocabulary for the embedding) or a CPU-sized share of
// them (cpu: 4096 x 512, f32), through the ops of engine/ops.h as the model calls them. An op's
// bytes are the least it must move (each input read once, each output written once); its
// effective bandwidth is those bytes over its best time, reported as a share of the bandwidth of
// a same-dtype contiguous copy_ (a device-to-device memcpy on the GPU) timed in the same run.
// fwd+bwd rows go through autograd (run_backward with a seed gradient), as training does.
// Prints a table and "BENCH name=mem_... ms= gbps= of_copy=" lines for tools/gpu_check.sh.
#include <cctype>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/cli/bench.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace latte::cli {

namespace {

struct MemoryCase {
  std::string name;
  double bytes;
  std::function<void()> run;
};

// The operands every case draws from: [rows, cols] activations, a [cols] weight, RoPE views of
// the activations as [batch, tokens, heads, head_dim] and the embedding's ids and table.
struct MemoryOperands {
  int64_t rows, cols, heads, head_dim, vocab;
  DType dtype;
  Device device;
  Tensor x, y, dy, acc, weight, cos, sin, ids, table;

  MemoryOperands(int64_t rows_, int64_t cols_, int64_t tokens_per_sequence, DType dtype_,
                 Device device_)
      : rows(rows_),
        cols(cols_),
        heads(cols_ / 64),
        head_dim(64),
        vocab(256),
        dtype(dtype_),
        device(device_) {
    Generator gen(7);
    x = randn({rows, cols}, gen, 0.0, 1.0, dtype, device);
    y = randn({rows, cols}, gen, 0.0, 1.0, dtype, device);
    dy = randn({rows, cols}, gen, 0.0, 1.0, dtype, device);
    acc = randn({rows, cols}, gen, 0.0, 1.0, dtype, device);
    weight = randn({cols}, gen, 1.0, 0.1, dtype, device);
    cos = randn({tokens_per_sequence, head_dim / 2}, gen, 0.0, 1.0, DType::F32, device);
    sin = randn({tokens_per_sequence, head_dim / 2}, gen, 0.0, 1.0, DType::F32, device);
    // Byte-like ids: every 7th token is one id (as a space is), the rest spread over the rest.
    std::vector<int32_t> id_values(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i)
      id_values[static_cast<size_t>(i)] = i % 7 == 0 ? 32 : static_cast<int32_t>(i * 7919 % vocab);
    ids = Tensor::from_vector(id_values, Shape{rows}).to(device);
    table = randn({vocab, cols}, gen, 0.0, 1.0, dtype, device);
  }

  Shape heads_shape(int64_t tokens_per_sequence) const {
    return {rows / tokens_per_sequence, tokens_per_sequence, heads, head_dim};
  }
};

// Forward then backward of `forward` with the leaves' gradients dropped first (no accumulation).
std::function<void()> forward_backward(std::vector<Tensor> leaves, std::function<Tensor()> forward,
                                       Tensor seed) {
  return [leaves, forward, seed]() mutable {
    for (Tensor& t : leaves) t.zero_grad();
    run_backward(forward(), seed);
  };
}

std::vector<MemoryCase> memory_cases(MemoryOperands& o, int64_t tokens_per_sequence) {
  const double n = static_cast<double>(o.rows * o.cols),
               e = static_cast<double>(dtype_size(o.dtype));
  const Shape heads = o.heads_shape(tokens_per_sequence);
  Tensor out = Tensor::empty({o.rows, o.cols}, o.dtype, o.device);
  std::vector<MemoryCase> cases = {
      {"copy (baseline)", 2 * n * e, [&o, out]() mutable { out.copy_(o.x); }},
      {"add", 3 * n * e, [&o] { ops::add(o.x, o.y); }},
      {"add_ (in place)", 3 * n * e, [&o] { ops::add_(o.acc, o.y); }},
      {"fill", n * e, [&o] { o.acc.fill_(0.0); }},
      {"swiglu fwd", 3 * n * e, [&o] { ops::swiglu(o.x, o.y); }},
      {"rms_norm fwd", 2 * n * e, [&o] { ops::rms_norm(o.x, o.weight, 1e-6); }},
      {"rope fwd", 2 * n * e, [&o, heads] { ops::rope(o.x.view(heads), o.cos, o.sin, 0, false); }},
      {"embedding fwd", 2 * n * e, [&o] { ops::embedding(o.ids, o.table); }},
  };
  if (o.dtype == DType::BF16) {
    cases.push_back({"cast bf16 -> f32", n * (e + 4), [&o] { o.x.to(DType::F32); }});
    const Tensor x32 = o.x.to(DType::F32);
    cases.push_back({"cast f32 -> bf16", n * (4 + e), [x32] { x32.to(DType::BF16); }});
  }
  // Leaves that need gradients are separate tensors, so the forward-only cases above stay
  // graph-free.
  Tensor gate = o.x.clone(), up = o.y.clone(), x = o.x.clone(), w = o.weight.clone();
  Tensor table = o.table.clone();
  for (Tensor* t : {&gate, &up, &x, &w, &table}) t->set_requires_grad(true);
  // swiglu bwd reads gate, up, dy and writes d gate, d up; rms_norm bwd reads x, dy and writes
  // dx (d weight is a [cols] reduction); rope bwd reads dy, writes dx; embedding bwd reads dy.
  cases.push_back({"swiglu fwd+bwd", 8 * n * e,
                   forward_backward(
                       {gate, up}, [gate, up] { return ops::swiglu(gate, up); }, o.dy)});
  cases.push_back({"rms_norm fwd+bwd", 5 * n * e,
                   forward_backward(
                       {x, w}, [x, w] { return ops::rms_norm(x, w, 1e-6); }, o.dy)});
  cases.push_back(
      {"rope fwd+bwd", 4 * n * e,
       forward_backward(
           {x}, [x, heads, &o] { return ops::rope(x.view(heads), o.cos, o.sin, 0, false); },
           o.dy.view(heads))});
  cases.push_back({"embedding fwd+bwd", 3 * n * e,
                   forward_backward(
                       {table}, [table, &o] { return ops::embedding(o.ids, table); }, o.dy)});
  return cases;
}

// "cast bf16 -> f32" -> "cast_bf16_f32"; a parenthesized remark is dropped.
std::string bench_tag(const std::string& name) {
  std::string tag;
  for (const char ch : name.substr(0, name.find(" ("))) {
    if (std::isalnum(static_cast<unsigned char>(ch)))
      tag += ch;
    else if (!tag.empty() && tag.back() != '_')
      tag += '_';
  }
  return tag;
}

}  // namespace

void bench_memory(const BenchOptions& options) {
  const Device device = bench_device("memory", options);
  const bool cuda = device == Device::CUDA;
  const int64_t tokens_per_sequence = cuda ? 1024 : 512;
  const int64_t rows = cuda ? (options.quick ? 2048 : 16384) : (options.quick ? 1024 : 4096);
  const int64_t cols = cuda ? 1024 : 512;
  const DType dtype = cuda ? DType::BF16 : DType::F32;
  std::printf(
      "shape: [%lld, %lld] %s activations (RoPE as %lld heads of 64 over sequences of %lld; "
      "embedding over a 256-entry vocabulary), %s\n",
      static_cast<long long>(rows), static_cast<long long>(cols), dtype_name(dtype),
      static_cast<long long>(cols / 64), static_cast<long long>(tokens_per_sequence),
      cuda ? "cuda" : "cpu");
  std::printf(
      "bytes: the least each op must move; GB/s from the best of %d timings; 'of copy' = the "
      "share of a same-dtype contiguous copy_'s GB/s in this run\n\n",
      std::max(options.repeats, 1));
  MemoryOperands operands(rows, cols, tokens_per_sequence, dtype, device);
  const std::vector<MemoryCase> cases = memory_cases(operands, tokens_per_sequence);
  std::printf("%-20s %10s %10s %10s %9s\n", "op", "MB", "best ms", "GB/s", "of copy");
  double copy_gbps = 0;
  for (const MemoryCase& c : cases) {
    const Timing t =
        cuda ? time_on_device(c.run, options.repeats, device) : time_it(c.run, options.repeats);
    const double gbps = c.bytes / t.best_s * 1e-9;
    if (copy_gbps == 0) copy_gbps = gbps;  // the first case is the copy
    std::printf("%-20s %10.1f %10.4f %10.1f %8.0f%%\n", c.name.c_str(), c.bytes * 1e-6,
                t.best_s * 1e3, gbps, 100.0 * gbps / copy_gbps);
    std::printf("BENCH name=mem_%s ms=%.4f gbps=%.1f of_copy=%.3f\n", bench_tag(c.name).c_str(),
                t.best_s * 1e3, gbps, gbps / copy_gbps);
    std::fflush(stdout);
  }
}

}  // namespace latte::cli
