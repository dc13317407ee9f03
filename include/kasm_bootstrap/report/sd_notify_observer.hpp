#pragma once
// Progress for systemd (Type=notify units): STATUS= when each step starts and ends, and
// READY=1 with the final STATUS= when the run ends, success or not, so a failing run
// shows its reason in `systemctl status` instead of a start timeout. Uses libsystemd's
// sd_notify, which sends a datagram to $NOTIFY_SOCKET ('@' = abstract namespace) and
// does nothing when the variable is unset.

#include "kasm_bootstrap/plan/executor.hpp"

#include <mutex>
#include <string>

namespace kb::report {

class SdNotifyObserver final : public plan::Observer {
public:
  void on_run_started(const plan::Plan& plan) override;
  void on_step_started(const plan::Step& step) override;
  void on_step_finished(const plan::StepRecord& record) override;
  void on_run_finished(const plan::RunReport& report) override;

private:
  void send(const std::string& state);

  std::mutex mutex_;
  std::size_t total_ = 0;
  std::size_t finished_ = 0;
};

} // namespace kb::report
