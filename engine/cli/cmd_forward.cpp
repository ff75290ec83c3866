// `latte forward CONFIG --weights W --tokens T --out O [--grads]` (SPEC §8): the parity
// interface. Evaluation mode (no dropout, no router noise); float32 on the CPU by default,
// `--device cuda` runs it on the GPU (float32, or bfloat16 activations over fp32 weights).
#include <iostream>
#include <optional>
#include <set>

#include "engine/autograd.h"
#include "engine/cli/commands.h"
#include "engine/device.h"
#include "engine/io/tensor_file.h"
#include "engine/io/token_text.h"
#include "models/config_loader.h"
#include "models/model.h"

namespace latte::cli {

namespace {

struct ForwardArgs {
  std::string config, weights, tokens, out, dtype = "float32", device = "cpu";
  std::vector<std::string> overrides;
  bool grads = false;
};

DType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "f32") return DType::F32;
  if (name == "float64" || name == "f64") return DType::F64;
  if (name == "bfloat16" || name == "bf16") return DType::BF16;
  LATTE_FAIL() << "--dtype: expected float32, float64 or bfloat16, got '" << name << "'";
}

Device parse_device(const std::string& name, DType dtype) {
  LATTE_CHECK(name == "cpu" || name == "cuda")
      << "--device: expected cpu or cuda, got '" << name << "'";
  if (name == "cpu") {
    LATTE_CHECK(dtype != DType::BF16) << "--dtype bfloat16 needs --device cuda";
    return Device::CPU;
  }
  LATTE_CHECK(dtype != DType::F64) << "--dtype float64 runs on the CPU only";
  require_cuda("--device cuda");
  return Device::CUDA;
}

void run_forward(const ForwardArgs& args) {
  ConfigDocument doc = ConfigDocument::load(args.config);
  doc.apply_overrides(args.overrides);
  const ModelConfig config = load_model_config(doc);
  const DType dtype = parse_dtype(args.dtype);
  const Device device = parse_device(args.device, dtype);
  // bfloat16 = bf16 activations over fp32 weights, as in training.
  DeepSeekModel model(config, 0, dtype == DType::BF16 ? DType::F32 : dtype);
  model.set_compute_dtype(dtype);
  model.set_training(false);

  // Every parameter by name; the MoE correction biases are read when present, zero otherwise.
  NamedTensors destinations = model.named_parameters();
  std::set<std::string> optional;
  for (auto& [name, buffer] : model.named_buffers()) {
    destinations.emplace_back(name, buffer);
    optional.insert(name);
  }
  load_into(args.weights, destinations, optional);
  model.to(device);

  const Tensor tokens = read_token_text(args.tokens, config.vocab_size).to(device);
  LATTE_CHECK(tokens.size(1) >= 2)
      << args.tokens << ": sequences need at least 2 tokens, got " << tokens.size(1);
  ForwardContext ctx;
  std::optional<NoGradGuard> no_grad;
  if (!args.grads) no_grad.emplace();
  const ModelOutput out = model.forward(tokens, ctx);

  NamedTensors results = {{"logits", out.logits.to(DType::F32)},
                          {"lm_loss", out.lm_loss.to(DType::F32)},
                          {"aux_loss", out.aux_loss.to(DType::F32)},
                          {"loss", out.loss.to(DType::F32)}};
  if (args.grads) {
    model.zero_grad();
    out.loss.backward();
    for (auto& [name, p] : model.named_parameters()) {
      const Tensor g =
          p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), p.dtype(), p.device());
      results.emplace_back("grad." + name, g.to(DType::F32));
    }
  }
  save_tensors(args.out, results);
  std::cout << "loss " << out.loss.item() << " (lm " << out.lm_loss.item() << ", aux "
            << out.aux_loss.item() << ") -> " << args.out << "\n";
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto args = std::make_shared<ForwardArgs>();
  auto* cmd = app.add_subcommand(
      "forward", "Run one model on given weights and tokens; write logits, losses and gradients");
  cmd->add_option("config", args->config, "Model config (TOML)")->required();
  cmd->add_option("--weights", args->weights, "Parameters by SPEC name (safetensors)")->required();
  cmd->add_option("--tokens", args->tokens, "Token ids: one sequence per line")->required();
  cmd->add_option("--out", args->out, "Output safetensors file")->required();
  cmd->add_flag("--grads", args->grads, "Also write grad.<name> for every parameter");
  cmd->add_option("--dtype", args->dtype, "float32, float64 (cpu) or bfloat16 (cuda)")
      ->capture_default_str();
  cmd->add_option("--device", args->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--set", args->overrides, "Override a config key: section.key=value");
  cmd->callback([args] { run_forward(*args); });
}

}  // namespace latte::cli
