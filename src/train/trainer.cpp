#include "train/trainer.h"

#include <cmath>
#include <iostream>
#include <optional>

#include "config/loader.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "train/lr_schedule.h"
#include "train/run_directory.h"
#include "train/stop_request.h"
#include "ttt/sequence_loss.h"
#include "util/clock.h"
#include "util/file_io.h"
#include "util/runtime.h"

namespace ttt {

Trainer::Trainer(Config config)
    : config_(std::move(config)),
      launch_(detect_launch(config_.backend)),
      device_(setup_runtime(config_.backend, launch_.local_rank)),
      group_(make_process_group(config_, launch_, device_)) {
  const auto& t = config_.training;
  if (t.eval_mode) throw std::logic_error("an evaluation-only run is evaluate_checkpoint(), not a Trainer");
  check_same_config(*group_, config_);
  run_dir_ = run_directory(config_);
  if (group_->is_main()) {
    std::filesystem::create_directories(run_dir_);
    write_file_atomically((run_dir_ / "config.yaml").string(), to_yaml(config_));
  }
  weights_ = ModelWeights::initialize(config_.model, static_cast<uint64_t>(t.model_seed),
                                      scalar_type(config_.model.param_dtype), device_);
  optimizer_ = std::make_unique<OuterOptimizer>(t.optimizer_outer, t.spec_outer, weights_);
  if (group_->is_main())
    checkpointer_ =
        std::make_unique<Checkpointer>(require(config_.checkpoint.checkpoint_dir, "checkpoint.checkpoint_dir"),
                                       CheckpointPolicy{config_.checkpoint.keep_last});
  restore();
  auto loader = make_train_loader(config_, group_->rank(), group_->world_size());
  loader->set_position(state_.loader_position);
  if (group_->is_main())
    std::cout << "data: " << loader->source().describe() << ": " << loader->num_samples() << " samples of "
              << t.seq_length << " tokens" << (group_->distributed() ? ", " + describe(*group_) : "") << std::endl;
  train_loader_ = std::make_unique<PrefetchLoader>(std::move(loader));
  make_eval_loader(config_, group_->rank(), group_->world_size());  // too small for one batch: fail now
  reducer_ = std::make_unique<GradientReducer>(*group_, optimizer_->trainable(), config_.backend.bucket_size_mb << 20,
                                               config_.backend.overlap_grad_reduce);
}

void Trainer::restore() {
  // Rank 0 picks the checkpoint (the latest complete one when it starts), so every rank resumes
  // from the same step even when a save was interrupted or lands while the others look.
  RestorePlan plan = group_->is_main() ? restore_plan(config_) : RestorePlan{};
  const std::string picked =
      group_->broadcast_string(std::to_string(static_cast<int>(plan.part)) + "\n" + plan.step_dir);
  plan.part = static_cast<LoadPart>(std::stoi(picked.substr(0, picked.find('\n'))));
  plan.step_dir = picked.substr(picked.find('\n') + 1);
  if (plan.part != LoadPart::kNone) {
    load_checkpoint_weights(plan.step_dir, weights_);
    if (plan.part == LoadPart::kAll) {
      load_checkpoint_optimizer(plan.step_dir, *optimizer_);
      state_ = load_checkpoint_state(plan.step_dir);
    }
    if (group_->is_main())
      std::cout << "loaded " << (plan.part == LoadPart::kAll ? "weights, optimizer and loader state" : "weights")
                << " from " << plan.step_dir << std::endl;
  }
  // Every rank starts from rank 0's weights, whatever the seeds or files it saw.
  for (auto& w : weights_.tensors()) {
    torch::NoGradGuard no_grad;
    group_->broadcast(w);
  }
}

bool Trainer::should_save(int64_t step, bool* milestone) const {
  const auto& t = config_.training;
  *milestone = t.save_milestone_freq > 0 && step % t.save_milestone_freq == 0 && step != 0;
  const bool regular = config_.checkpoint.save_freq > 0 && (step + 1) % config_.checkpoint.save_freq == 0;
  return *milestone || regular || step == t.total_steps - 1;
}

StepMetrics Trainer::train_step(int64_t step) {
  const auto& t = config_.training;
  const double start = monotonic_seconds();
  const auto ttt = TttOptions::for_step(config_, step);

  optimizer_->zero_grad();
  reducer_->begin_step();
  torch::Tensor loss_sum;  // float64 on the device: nothing waits on the device until the read below
  // Accumulation splits the host batch, so the samples of a step do not depend on accum_steps.
  const Batch host = *train_loader_->next();
  const auto inputs = host.input_ids.chunk(t.accum_steps, 0), targets = host.targets.chunk(t.accum_steps, 0),
             masks = host.loss_mask.chunk(t.accum_steps, 0);
  for (int64_t micro = 0; micro < t.accum_steps; ++micro) {
    const Batch batch = Batch{inputs[micro], targets[micro], masks[micro]}.to(device_);
    auto out = loss_and_backward(config_.model, weights_, batch, ttt, t.inner_remat_freq,
                                 1.0 / static_cast<double>(t.accum_steps));
    const auto loss = out.loss.detach().to(torch::kFloat64);
    loss_sum = loss_sum.defined() ? loss_sum + loss : loss;
  }
  reducer_->finish_step();  // every rank now holds the gradient of the global batch
  const auto norm_on_device = optimizer_->clip_gradients();
  // The step's one host synchronisation: the loss summed over the ranks, the stop requests
  // (SIGUSR1 on any rank stops them all after this same step) and the gradient norm, read
  // together before the update is applied.
  auto summed = torch::stack({loss_sum / static_cast<double>(t.accum_steps),
                              torch::full({}, stop_requested() ? 1.0 : 0.0, loss_sum.options())});
  group_->all_reduce_sum(summed);
  const auto read_back = torch::cat({summed, norm_on_device.view({1}).to(summed.device())}).cpu();
  const double* read = read_back.data_ptr<double>();
  StepMetrics m;
  m.step = step;
  m.loss = read[0] / static_cast<double>(group_->world_size());
  stopped_by_signal_ = read[1] > 0.0;
  const double norm = read[2];
  if (!std::isfinite(m.loss) || !std::isfinite(norm))
    throw std::runtime_error("non-finite " + std::string(std::isfinite(m.loss) ? "gradient" : "loss") + " at step " +
                             std::to_string(step) + "; stopped before applying it (no checkpoint was written from it)");
  m.gradient_norm = logged_gradient_norm(norm);
  m.outer_learning_rate = outer_learning_rate(t.optimizer_outer, step);
  m.inner_learning_rate = ttt.reported_inner_lr(config_.model);
  optimizer_->step(m.outer_learning_rate);
  // The gradient all-reduce keeps the ranks in step, so this rank's time is the step's. On a GPU
  // the update is still queued here; it counts in the next step's time (the same in a steady run).
  m.tokens_per_second = static_cast<double>(t.global_batch_size * t.seq_length) / (monotonic_seconds() - start);
  m.wall_time = monotonic_seconds() - start_time_;
  return m;
}

EvalResult Trainer::train() {
  const auto& t = config_.training;
  start_time_ = monotonic_seconds();
  // A run that is already complete is evaluated as the reference's eval mode does: full inner lr.
  if (start_step() >= t.total_steps)
    return evaluate_and_report(config_, weights_, TttOptions::for_inference(config_), device_, state_.step, run_dir_,
                               *group_);
  {
    std::optional<ProgressReporter> progress;  // rank 0 reports for the run
    if (group_->is_main()) progress.emplace(run_dir_, start_step(), t.total_steps);
    if (progress && start_step() > 0) progress->message("resuming at step " + std::to_string(start_step()));
    install_stop_request_handler();
    for (int64_t step = start_step(); step < t.total_steps; ++step) {
      if (t.break_step > 0 && step > t.break_step) break;  // the reference's rule: steps up to break_step run
      const StepMetrics metrics = train_step(step);
      if (progress) progress->report(metrics);
      state_.step = step;
      state_.loader_position = train_loader_->position();
      bool milestone = false;
      const bool save = should_save(step, &milestone);
      if ((save || stopped_by_signal_) && checkpointer_)
        checkpointer_->save(state_, weights_, optimizer_.get(), config_, milestone);
      if (stopped_by_signal_) {
        if (progress) progress->message("stopped by SIGUSR1 after saving step " + std::to_string(step));
        group_->barrier();  // the checkpoint is complete before any rank exits
        return EvalResult{};
      }
    }
  }
  // The evaluation that ends training runs at the inner learning rate of the last step trained,
  // as the reference's (still in its warm-up when the run is shorter than ilr_warmup_steps); TTT
  // layers at their full rate (TttOptions::for_end_of_training).
  auto result = evaluate_and_report(config_, weights_, TttOptions::for_end_of_training(config_, state_.step), device_,
                                    state_.step, run_dir_, *group_);
  group_->barrier();  // no rank leaves before rank 0 has written everything
  return result;
}

}  // namespace ttt
