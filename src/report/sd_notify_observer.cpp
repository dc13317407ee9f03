#include "kasm_bootstrap/report/sd_notify_observer.hpp"

#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <systemd/sd-daemon.h>

#include <fmt/format.h>

namespace kb::report {
namespace {

// STATUS= is one line; a newline would start a new (bogus) assignment.
std::string status_text(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  if (text.size() > 400) text = text.substr(0, 400) + "...";
  return scrub(text);
}

} // namespace

void SdNotifyObserver::send(const std::string& state) {
  const int r = sd_notify(0, state.c_str());
  if (r < 0) log::debug("sd_notify failed: {}", r);
}

void SdNotifyObserver::on_run_started(const plan::Plan& plan) {
  std::lock_guard lock(mutex_);
  total_ = plan.size();
  finished_ = 0;
  send(fmt::format("STATUS=starting: {} steps", total_));
}

void SdNotifyObserver::on_step_started(const plan::Step& step) {
  std::lock_guard lock(mutex_);
  send(status_text(fmt::format("STATUS=[{}/{}] {}: running", finished_ + 1, total_, step.id())));
}

void SdNotifyObserver::on_step_finished(const plan::StepRecord& record) {
  std::lock_guard lock(mutex_);
  ++finished_;
  std::string text =
      fmt::format("STATUS=[{}/{}] {}: {}", finished_, total_, record.id, plan::outcome_name(record.outcome));
  if (record.outcome == plan::Outcome::kFailed || record.outcome == plan::Outcome::kWarning)
    text += ": " + record.message;
  send(status_text(text));
}

void SdNotifyObserver::on_run_finished(const plan::RunReport& report) {
  std::lock_guard lock(mutex_);
  const std::string status = report.success()
                                 ? fmt::format("STATUS=kasm-bootstrap: success in {:.1f} s", report.duration_ms / 1000)
                                 : fmt::format("STATUS=kasm-bootstrap: FAILED at {} ({}): {}",
                                               report.failed_step.empty() ? "-" : report.failed_step,
                                               exit_code_name(report.exit_code), report.failure_message);
  send("READY=1\n" + status_text(status));
}

} // namespace kb::report
