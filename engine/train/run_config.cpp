#include "engine/train/run_config.h"

#include <filesystem>

#include "models/config_loader.h"

namespace latte {

RunConfig load_run_config(const ConfigDocument& doc) {
  RunConfig c;
  c.model = load_model_config(doc);
  c.resolved = doc.to_json();
  c.name = std::filesystem::path(doc.source()).stem().string();

  TableReader root = doc.root();
  root.mark_used("model");
  for (const char* t : {"train", "data", "eval", "output", "suite"}) root.mark_used(t);
  root.reject_unused();

  TableReader t = doc.table("train");
  TrainSection& tr = c.train;
  tr.seed = static_cast<uint64_t>(t.get_int("seed", 1, Bounds::at_least(0)));
  tr.device = t.get_string("device", tr.device);
  if (tr.device != "cpu" && tr.device != "cuda")
    t.fail("device", "expected \"cpu\" or \"cuda\", got \"" + tr.device + "\"");
  tr.dtype = t.get_string("dtype", tr.device == "cuda" ? "bfloat16" : "float32");
  if (tr.dtype != "float32" && tr.dtype != "float64" && tr.dtype != "bfloat16")
    t.fail("dtype", "expected \"float32\", \"float64\" or \"bfloat16\", got \"" + tr.dtype + "\"");
  if (tr.dtype == "bfloat16" && tr.device != "cuda")
    t.fail("dtype", "\"bfloat16\" (mixed precision) needs train.device = \"cuda\"");
  if (tr.dtype == "float64" && tr.device != "cpu")
    t.fail("dtype", "\"float64\" runs on the CPU only");
  tr.batch_size = t.get_int("batch_size", tr.batch_size, Bounds::at_least(1));
  tr.seq_len = t.get_int("seq_len", tr.seq_len, Bounds::at_least(2));
  tr.grad_accum = t.get_int("grad_accum", tr.grad_accum, Bounds::at_least(1));
  tr.steps = t.get_int("steps", tr.steps, Bounds::at_least(1));
  tr.lr = t.get_double("lr", tr.lr, Bounds::greater_than(0));
  tr.min_lr = t.get_double("min_lr", tr.lr * 0.1, Bounds::at_least(0));
  if (tr.min_lr > tr.lr) t.fail("min_lr", "must not exceed train.lr");
  tr.warmup_steps = t.get_int("warmup_steps", std::min<int64_t>(tr.warmup_steps, tr.steps / 10),
                              Bounds::at_least(0));
  tr.weight_decay = t.get_double("weight_decay", tr.weight_decay, Bounds::at_least(0));
  tr.beta1 = t.get_double("beta1", tr.beta1, Bounds::in_range(0, 0.999999));
  tr.beta2 = t.get_double("beta2", tr.beta2, Bounds::in_range(0, 0.999999));
  tr.eps = t.get_double("eps", tr.eps, Bounds::greater_than(0));
  tr.grad_clip = t.get_double("grad_clip", tr.grad_clip, Bounds::at_least(0));
  tr.log_every = t.get_int("log_every", tr.log_every, Bounds::at_least(1));
  tr.checkpoint_every = t.get_int("checkpoint_every", tr.checkpoint_every, Bounds::at_least(0));
  tr.keep_checkpoints = t.get_int("keep_checkpoints", tr.keep_checkpoints, Bounds::at_least(1));
  tr.threads = t.get_int("threads", tr.threads, Bounds::at_least(0));
  t.reject_unused();
  if (c.model.max_position_embeddings < tr.seq_len)
    t.fail("seq_len", "exceeds model.max_position_embeddings = " +
                          std::to_string(c.model.max_position_embeddings));

  TableReader d = doc.table("data");
  c.data.train = d.get_string_list("train", c.data.train);
  c.data.val = d.get_string_list("val", c.data.val);
  if (c.data.train.empty()) d.fail("train", "needs at least one path, glob or \"fortunes\"");
  if (c.data.val.empty()) d.fail("val", "needs at least one path, glob or \"fortunes\"");
  d.reject_unused();

  TableReader e = doc.table("eval");
  c.eval.every = e.get_int("every", c.eval.every, Bounds::at_least(0));
  c.eval.windows = e.get_int("windows", c.eval.windows, Bounds::at_least(1));
  c.eval.length_multipliers =
      e.get_int_list("length_multipliers", c.eval.length_multipliers, Bounds::at_least(1));
  e.reject_unused();

  TableReader o = doc.table("output");
  c.name = o.get_string("name", c.name);
  c.output.dir = o.get_string("dir", "runs/" + c.name);
  o.reject_unused();
  return c;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigDocument doc = ConfigDocument::load(path);
  doc.apply_overrides(overrides);
  return load_run_config(doc);
}

}  // namespace latte
