#include "engine/train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace latte {

Progress::Progress(bool enabled, int64_t total_steps)
    : enabled_(enabled), tty_(isatty(STDOUT_FILENO) == 1), total_(total_steps) {}

void Progress::update(int64_t step, double loss, double lr, double tokens_per_s,
                      const std::string& eta, double val_loss, bool log_line) {
  if (!enabled_ || (!tty_ && !log_line && std::isnan(val_loss))) return;
  char val[48] = "";
  if (!std::isnan(val_loss)) std::snprintf(val, sizeof val, "  val %.4f", val_loss);
  std::printf("%sstep %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  eta %s%s%s",
              tty_ ? "\r\033[K" : "", static_cast<long long>(step), static_cast<long long>(total_),
              loss, lr, tokens_per_s, eta.c_str(), val, tty_ ? "" : "\n");
  std::fflush(stdout);
  dirty_ = tty_;
}

void Progress::finish() {
  if (dirty_) std::printf("\n");
  dirty_ = false;
}

}  // namespace latte
