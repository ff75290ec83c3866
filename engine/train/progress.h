// Live training progress: on a terminal one line rewritten in place (step/total, loss, lr,
// tokens/s, ETA); otherwise plain lines at each log interval, so logs stay readable.
#pragma once

#include <cstdint>
#include <string>

namespace latte {

class Progress {
 public:
  Progress(bool enabled, int64_t total_steps);
  // `log_line`: this step is a logging step (printed as a plain line when not on a terminal).
  void update(int64_t step, double loss, double lr, double tokens_per_s, const std::string& eta,
              double val_loss, bool log_line);
  void finish();

 private:
  bool enabled_;
  bool tty_;
  int64_t total_;
  bool dirty_ = false;
};

}  // namespace latte
