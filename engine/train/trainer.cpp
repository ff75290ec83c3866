#include "engine/train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <cblas.h>
#include <atomic>
#include <cmath>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/dist/average_gradients.h"
#include "engine/io/atomic_file.h"
#include "engine/io/text_corpus.h"
#include "engine/io/token_dataset.h"
#include "engine/ops.h"
#include "engine/optim/adamw.h"
#include "engine/profiler.h"
#include "engine/train/checkpoint.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/progress.h"
#include "kernels/cpu/moe_balance.h"
#include "models/model.h"
#include "models/moe.h"

namespace latte {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop = true;
}

// Where and in which precision a run computes (train.device, train.dtype; run_config.cpp has
// already rejected the combinations that do not exist).
struct Placement {
  Device device = Device::CPU;
  DType params = DType::F32;   // parameters, gradients and optimizer state
  DType compute = DType::F32;  // activations (bf16: mixed precision)
};

Placement placement_of(const TrainSection& tc) {
  Placement p;
  if (tc.device == "cuda") {
    require_cuda("train.device = \"cuda\"");
    p.device = Device::CUDA;
  }
  if (tc.dtype == "float64") p.params = p.compute = DType::F64;
  if (tc.dtype == "bfloat16") p.compute = DType::BF16;
  return p;
}

// "fortunes" = the default corpus split; anything else = paths or globs.
TokenDataset open_dataset(const std::vector<std::string>& spec, bool train_split) {
  if (spec.size() == 1 && spec[0] == "fortunes") {
    const DocumentSplit split = default_corpus();
    return TokenDataset::from_tokens(
        join_documents(train_split ? split.train : split.val),
        train_split ? "fortunes (train split)" : "fortunes (val split)");
  }
  return TokenDataset::open(spec);
}

// Token windows [rows, seq_len + 1] from a loader batch (inputs plus the last target), on
// `device`.
Tensor window_tokens(const Batch& b, Device device) {
  const int64_t L = b.seq_len + 1;
  std::vector<int32_t> ids(b.batch * L);
  for (int64_t r = 0; r < b.batch; ++r) {
    std::copy_n(b.inputs.data() + r * b.seq_len, b.seq_len, ids.data() + r * L);
    ids[r * L + b.seq_len] = b.targets[r * b.seq_len + b.seq_len - 1];
  }
  return Tensor::from_vector(ids, {b.batch, L}).to(device);
}

double value_or_zero(const Tensor& scalar) {
  return scalar.defined() ? scalar.item() : 0.0;
}

int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Parameter groups: weight decay on matrices only (not norms, biases, or 1-D tensors).
std::vector<ParamGroup> param_groups(const Module& model, double weight_decay) {
  ParamGroup decay{{}, weight_decay}, no_decay{{}, 0.0};
  for (auto& [name, p] : model.named_parameters())
    (p.dim() >= 2 ? decay : no_decay).params.emplace_back(name, p);
  return {decay, no_decay};
}

// Mean lm loss over the fixed validation windows of length seq_len.
double evaluate(DeepSeekModel& model, const TokenDataset& val, int64_t seq_len, int64_t windows,
                int64_t batch, Device device, Communicator& comm) {
  const ValidationWindows w(val, seq_len, windows);
  LATTE_CHECK(w.size() > 0) << "eval: validation data has too few tokens for one window of "
                            << seq_len + 1;
  NoGradGuard no_grad;
  model.set_training(false);
  std::vector<double> acc = {0.0, 0.0};  // sum of losses weighted by rows, rows
  for (int64_t first = comm.rank() * batch; first < w.size(); first += batch * comm.world_size()) {
    const int64_t n = std::min(batch, w.size() - first);
    ForwardContext ctx;
    const ModelOutput out = model.forward_window(window_tokens(w.get(first, n), device), ctx);
    acc[0] += out.lm_loss.item() * n;
    acc[1] += n;
  }
  comm.allreduce_sum(acc);
  model.set_training(true);
  return acc[0] / acc[1];
}

std::string format_duration(double s) {
  std::ostringstream o;
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) o << t / 3600 << "h";
  if (t >= 60) o << (t % 3600) / 60 << "m";
  o << t % 60 << "s";
  return o.str();
}

// The router noise seed of `rank` from rank 0's (which is that of a single process): the same
// noise on every rank would correlate their routing. Every rank draws as many numbers per step,
// so rank 0's offset (saved in checkpoints) is every rank's.
uint64_t rank_noise_seed(uint64_t rank0_seed, int rank) {
  return rank0_seed + static_cast<uint64_t>(rank) * 0x9e3779b97f4a7c15ull;
}

// Whether a stop was requested on any rank: signals reach the ranks of a job at different steps,
// and all of them must leave the loop at the same one.
bool stop_requested_on_any_rank(Communicator& comm) {
  std::vector<int64_t> requests = {stop_requested() ? 1 : 0};
  comm.allreduce_sum(requests);
  return requests[0] > 0;
}

// The expert loads of the step's global batch, in one reduction over the ranks: each MoE layer's
// load over this rank's micro-batches (MoeLayer::pending_load) and its dropped assignments. They
// go to the metrics (`stats`: one entry per layer, in `layers` order) and to the layer's
// aux-loss-free bias update.
void update_moe_layers(const std::vector<MoeLayer*>& layers, std::vector<MoeLayerStats>& stats,
                       Communicator& comm) {
  LATTE_CHECK(stats.size() == layers.size())
      << "training step: " << stats.size() << " MoE statistics for " << layers.size()
      << " MoE layers";
  std::vector<int64_t> counts;
  for (size_t i = 0; i < layers.size(); ++i) {
    LATTE_CHECK(stats[i].layer == layers[i]->name())
        << "training step: MoE statistics of " << stats[i].layer << " where " << layers[i]->name()
        << " was expected";
    const std::vector<int64_t>& load = layers[i]->pending_load();
    counts.insert(counts.end(), load.begin(), load.end());
    counts.push_back(stats[i].dropped_assignments);
  }
  comm.allreduce_sum(counts);
  auto next = counts.begin();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto end = next + static_cast<int64_t>(layers[i]->pending_load().size());
    stats[i].tokens_per_expert.assign(next, end);
    stats[i].dropped_assignments = *end;
    next = end + 1;
    layers[i]->update_correction_bias(stats[i].tokens_per_expert);
  }
}

// Keeps the metric lines of steps <= `step` (a resumed run continues the log where its
// checkpoint was taken, so the log equals that of an uninterrupted run).
void truncate_metrics(const fs::path& file, int64_t step) {
  std::ifstream in(file);
  if (!in.good()) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  write_file_atomically(file.string(), kept);
}

// The --profile table: each category's seconds, their sum and the rest of the profiled steps'
// wall time. `device_timed`: GPU time from CUDA events; `host_timing_gpu`: the host clock while
// the GPU runs the work asynchronously.
void print_step_split(int64_t steps, double wall, bool device_timed, bool host_timing_gpu) {
  std::printf(
      "step time split over %lld steps (the session's first, which warms caches, is not "
      "profiled), %.3f s of their wall time\n",
      static_cast<long long>(steps), wall);
  std::printf(
      device_timed
          ? "(GPU time between each category's CUDA events, innermost scope wins: it includes\n"
            " GPU idle gaps inside a scope, so launch-bound ops look long; each step ends with a\n"
            " device sync)\n"
      : host_timing_gpu
          ? "(host time inside each category's scopes while it issues the GPU's work, innermost\n"
            " scope wins; waiting for the GPU at the end of each step counts as other)\n"
          : "(host wall time, innermost scope wins)\n");
  double named = 0;
  for (int c = 0; c < static_cast<int>(profiler::Category::kCount); ++c) {
    const auto category = static_cast<profiler::Category>(c);
    const double s = profiler::seconds(category);
    named += s;
    std::printf("  %-28s %9.3f s %6.1f%%\n", profiler::category_name(category), s, 100 * s / wall);
  }
  std::printf("  %-28s %9.3f s %6.1f%%\n", "sum of the categories", named, 100 * named / wall);
  std::printf("  %-28s %9.3f s %6.1f%%\n", "other (outside every scope)", wall - named,
              100 * (wall - named) / wall);
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool stop_requested() {
  return g_stop.load();
}

nlohmann::json TrainSummary::to_json() const {
  nlohmann::json j = {{"status", status},
                      {"steps", steps},
                      {"final_train_loss", final_train_loss},
                      {"best_val_loss", best_val_loss},
                      {"best_val_ppl", std::exp(best_val_loss)},
                      {"tokens_per_second", tokens_per_second},
                      {"wall_seconds", wall_seconds},
                      {"peak_bytes", peak_bytes},
                      {"params_total", params_total}};
  nlohmann::json at = nlohmann::json::object();
  for (auto& [m, loss] : val_loss_at_multiplier)
    at[std::to_string(m)] = {{"val_loss", loss}, {"val_ppl", std::exp(loss)}};
  j["length_extrapolation"] = at;
  return j;
}

TrainSummary train(const RunConfig& config, const TrainOptions& options, Communicator& comm) {
  const TrainSection& tc = config.train;
  const Placement place = placement_of(tc);
  if (tc.threads > 0) {
    omp_set_num_threads(static_cast<int>(tc.threads));
    openblas_set_num_threads(static_cast<int>(tc.threads));
  }
  const fs::path run_dir(config.output.dir);
  const bool root = comm.is_root();

  // Data first: a bad corpus or vocabulary mismatch fails before any work.
  const TokenDataset train_data = open_dataset(config.data.train, true);
  const TokenDataset val_data = open_dataset(config.data.val, false);
  check_vocab(train_data, config.model.vocab_size);
  check_vocab(val_data, config.model.vocab_size);

  if (root) {
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    LATTE_CHECK(!ec) << "output.dir " << run_dir.string() << ": cannot create (" << ec.message()
                     << ")";
    const fs::path probe = run_dir / ".write_test";
    std::ofstream test(probe);
    LATTE_CHECK(test.good()) << "output.dir " << run_dir.string() << ": not writable";
    test.close();
    fs::remove(probe, ec);
  }

  // Built on the CPU (the same initial weights on every device), then moved.
  DeepSeekModel model(config.model, tc.seed, place.params);
  model.to(place.device);
  model.set_compute_dtype(place.compute);
  AdamW optimizer(param_groups(model, tc.weight_decay), AdamWOptions{tc.beta1, tc.beta2, tc.eps});
  BatchLoader loader(train_data, tc.batch_size, tc.seq_len, tc.seed, comm.rank(),
                     comm.world_size());
  Generator router_noise(rank_noise_seed(tc.seed ^ 0x5eedull, comm.rank()));
  const LrSchedule schedule{tc.lr, tc.min_lr, tc.warmup_steps, tc.steps};

  int64_t start_step = 0;
  double best_val = INFINITY;
  double elapsed_before = 0;
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  if (options.resume) {
    const auto ckpt = latest_checkpoint(run_dir.string());
    LATTE_CHECK(ckpt.has_value()) << "--resume: no checkpoint in " << run_dir.string()
                                  << "/checkpoints";
    const nlohmann::json state = load_checkpoint(*ckpt, model, optimizer);
    start_step = state.at("step").get<int64_t>();
    loader.restore(state.at("loader").get<LoaderState>());
    router_noise.set_state(
        rank_noise_seed(state.at("router_noise_seed").get<uint64_t>(), comm.rank()),
        state.at("router_noise_offset").get<uint64_t>());
    best_val = state.value("best_val_loss", double(INFINITY));
    // The loader's position counts global windows, but batch_size is per rank: another number of
    // processes would continue with another global batch, which is not this run.
    const int saved_world_size = state.value("world_size", 1);
    LATTE_CHECK(saved_world_size == comm.world_size())
        << "--resume: checkpoint " << *ckpt << " was written by a run of " << saved_world_size
        << " process(es), this one has " << comm.world_size()
        << "; resume with the same number of processes ("
        << (saved_world_size == 1 ? std::string("without mpirun")
                                  : "mpirun -np " + std::to_string(saved_world_size))
        << ")";
    elapsed_before = state.value("wall_seconds", 0.0);
    if (root) truncate_metrics(metrics_path, start_step);
  } else if (root) {
    LATTE_CHECK(!latest_checkpoint(run_dir.string()).has_value())
        << "output.dir " << run_dir.string()
        << " already holds checkpoints: resume with --resume or choose another output.dir";
    write_file_atomically(metrics_path.string(), "");
  }
  if (root)
    write_file_atomically((run_dir / "config.json").string(), config.resolved.dump(2) + "\n");

  std::ofstream metrics;
  if (root) metrics.open(metrics_path, std::ios::app);
  Progress progress(options.progress && root, tc.steps);
  Allocator& alloc = allocator_for(place.device);
  alloc.reset_peak();
  // --profile: the host clock on the CPU, the CUDA runtime's event timer on the GPU (the host
  // clock there too with profile_host).
  const bool device_timed = place.device == Device::CUDA && !options.profile_host;
  profiler::Timer* profile_timer = nullptr;
  const bool profile = options.profile || options.profile_host;
  if (profile) profile_timer = device_timed ? &profiler::device_timer() : &profiler::host_timer();
  profiler::reset();

  auto state_json = [&](int64_t step, double wall) {
    return nlohmann::json{{"step", step},
                          {"world_size", comm.world_size()},
                          {"loader", loader.state()},
                          {"router_noise_seed", router_noise.seed()},
                          {"router_noise_offset", router_noise.offset()},
                          {"best_val_loss", std::isfinite(best_val) ? best_val : 1e300},
                          {"wall_seconds", wall},
                          {"config", config.resolved}};
  };

  const auto t_start = std::chrono::steady_clock::now();
  auto wall = [&] {
    return elapsed_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  const int64_t tokens_per_step = tc.batch_size * tc.seq_len * tc.grad_accum * comm.world_size();
  double train_seconds = 0, step_seconds_sum = 0;
  int64_t timed_steps = 0;
  std::deque<double> recent_lm;  // lm losses of the last log_every steps
  int64_t step = start_step;
  std::string status = "completed";
  const std::vector<MoeLayer*> moe_layers = model.moe_layers();
  const std::vector<Tensor> params = model.parameters();  // handles, fetched once
  Batch batch;

  while (step < tc.steps) {
    if (stop_requested_on_any_rank(comm) ||
        (options.stop_after > 0 && step - start_step >= options.stop_after)) {
      status = "interrupted";
      break;
    }
    const DeviceRange range(place.device, "latte step " + std::to_string(step + 1));
    const auto t0 = std::chrono::steady_clock::now();
    // Every step but the session's first (its caches, allocations and library loads are warming),
    // the steps that tokens/s times.
    const bool profiled = profile_timer && step > start_step;
    if (profiled) profiler::start(*profile_timer);
    for (Tensor p : params) p.zero_grad();
    double loss_sum = 0, lm_sum = 0, aux_sum = 0, mtp_sum = 0;
    std::vector<MoeLayerStats> moe_stats;
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      loader.next(batch);
      ForwardContext ctx;
      ctx.training = true;
      ctx.router_noise = &router_noise;
      const ModelOutput out = model.forward_window(window_tokens(batch, place.device), ctx);
      ops::scale(out.loss, 1.0 / static_cast<double>(tc.grad_accum)).backward();
      loss_sum += out.loss.item();
      lm_sum += out.lm_loss.item();
      aux_sum += out.aux_loss.item();
      mtp_sum += out.mtp_loss.defined() ? out.mtp_loss.item() : 0.0;
      if (moe_stats.empty())
        moe_stats = ctx.moe_stats;
      else  // the loads over the micro-batches are the layers' pending loads
        for (size_t i = 0; i < moe_stats.size(); ++i)
          moe_stats[i].dropped_assignments += ctx.moe_stats[i].dropped_assignments;
    }
    const double inv = 1.0 / static_cast<double>(tc.grad_accum);
    std::vector<double> losses = {loss_sum * inv, lm_sum * inv, aux_sum * inv, mtp_sum * inv};
    comm.allreduce_sum(losses);
    for (double& v : losses) v /= comm.world_size();
    update_moe_layers(moe_layers, moe_stats, comm);
    if (!std::isfinite(losses[0])) {
      const auto ckpt = latest_checkpoint(run_dir.string());
      LATTE_FAIL() << "non-finite loss (" << losses[0] << ") at step " << step + 1
                   << "; stopping. Last good checkpoint: "
                   << (ckpt ? *ckpt : std::string("none (no checkpoint written yet)"));
    }
    average_gradients(params, comm);
    const double grad_norm = global_grad_norm(params);
    const double lr = schedule.at(step);
    optimizer.step(lr, clip_scale(grad_norm, tc.grad_clip));
    ++step;
    if (profiled) {  // a profiled step ends when its device work has finished
      synchronize(place.device);
      profiler::stop();
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    train_seconds += dt;
    if (step - start_step > 1) {  // the first step of a session warms caches: not timed
      step_seconds_sum += dt;
      ++timed_steps;
    }

    const bool eval_now = config.eval.every > 0 && step % config.eval.every == 0 && step < tc.steps;
    double val_now = NAN;
    if (eval_now) {
      val_now = evaluate(model, val_data, tc.seq_len, config.eval.windows, tc.batch_size,
                         place.device, comm);
      best_val = std::min(best_val, val_now);
    }
    recent_lm.push_back(losses[1]);
    if (static_cast<int64_t>(recent_lm.size()) > tc.log_every) recent_lm.pop_front();
    if (root) {
      nlohmann::json m = {{"step", step},
                          {"loss", losses[0]},
                          {"lm_loss", losses[1]},
                          {"aux_loss", losses[2]},
                          {"mtp_loss", losses[3]},
                          {"lr", lr},
                          {"grad_norm", grad_norm},
                          {"tokens_per_s", tokens_per_step / dt},
                          {"step_time_s", dt},
                          {"peak_bytes", alloc.peak_bytes()},
                          {"rss_bytes", rss_bytes()}};
      if (!moe_stats.empty()) {
        nlohmann::json layers = nlohmann::json::array();
        for (size_t i = 0; i < moe_stats.size(); ++i) {
          const auto& s = moe_stats[i];
          const auto st = kernels::cpu::load_statistics(
              s.tokens_per_expert.data(), static_cast<int64_t>(s.tokens_per_expert.size()));
          nlohmann::json l = {{"layer", s.layer},
                              {"load", s.tokens_per_expert},
                              {"max_over_mean", st.max_over_mean},
                              {"cv", st.coefficient_of_variation},
                              {"dropped", s.dropped_assignments},
                              {"seq_aux_loss", value_or_zero(s.seq_aux_loss)},
                              {"switch_loss", value_or_zero(s.switch_loss)}};
          if (i < moe_layers.size())
            l["bias"] = moe_layers[i]->correction_bias().to_vector<double>();
          layers.push_back(l);
        }
        m["moe"] = layers;
      }
      if (eval_now) {
        m["val_loss"] = val_now;
        m["val_ppl"] = std::exp(val_now);
      }
      metrics << m.dump() << "\n";
      metrics.flush();
      const double eta = timed_steps > 0 ? step_seconds_sum / timed_steps * (tc.steps - step) : 0;
      progress.update(step, losses[0], lr, tokens_per_step / dt, format_duration(eta), val_now,
                      step % tc.log_every == 0 || step == tc.steps);
    }
    if (root && tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0 && step < tc.steps)
      save_checkpoint(run_dir.string(), step, model, optimizer, state_json(step, wall()),
                      tc.keep_checkpoints);
  }
  progress.finish();

  TrainSummary summary;
  summary.status = status;
  summary.steps = step;
  for (double v : recent_lm) summary.final_train_loss += v / static_cast<double>(recent_lm.size());
  summary.params_total = model.parameter_count();
  if (status == "completed") {
    for (int64_t mult : config.eval.length_multipliers) {
      const double v = evaluate(model, val_data, tc.seq_len * mult, config.eval.windows,
                                tc.batch_size, place.device, comm);
      summary.val_loss_at_multiplier[mult] = v;
      if (mult == 1) best_val = std::min(best_val, v);
    }
  }
  summary.best_val_loss = best_val;
  summary.wall_seconds = wall();
  summary.tokens_per_second =
      timed_steps > 0
          ? tokens_per_step * timed_steps / step_seconds_sum
          : (train_seconds > 0 ? tokens_per_step * (step - start_step) / train_seconds : 0);
  summary.peak_bytes = static_cast<int64_t>(alloc.peak_bytes());
  if (root) {
    save_checkpoint(run_dir.string(), step, model, optimizer,
                    state_json(step, summary.wall_seconds), tc.keep_checkpoints);
    if (status == "completed")
      write_file_atomically((run_dir / "summary.json").string(), summary.to_json().dump(2) + "\n");
  }
  if (profile && root) {
    if (timed_steps > 0)
      print_step_split(timed_steps, step_seconds_sum, device_timed,
                       place.device == Device::CUDA && !device_timed);
    else
      std::printf("no step time split: the session ran one step, and its first is not profiled\n");
  }
  return summary;
}

}  // namespace latte
