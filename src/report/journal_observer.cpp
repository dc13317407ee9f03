#include "kasm_bootstrap/report/journal_observer.hpp"

#include "kasm_bootstrap/plan/plan.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/version.hpp"

#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <fmt/format.h>

namespace kb::report {
namespace {

int priority_of(plan::Outcome o) {
  switch (o) {
  case plan::Outcome::kFailed: return LOG_ERR;
  case plan::Outcome::kWarning: return LOG_WARNING;
  case plan::Outcome::kNotRun: return LOG_NOTICE;
  default: return LOG_INFO;
  }
}

void send(const std::vector<std::string>& fields) {
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const auto& f : fields)
    iov.push_back({const_cast<char*>(f.data()), f.size()});
  sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

} // namespace

std::vector<std::string> journal_fields(const plan::StepRecord& r) {
  std::string message = fmt::format("{}: {} in {:.0f} ms", r.id, plan::outcome_name(r.outcome), r.duration_ms);
  if (!r.message.empty()) message += ": " + r.message;
  std::vector<std::string> f{
      "MESSAGE=" + scrub(message),
      fmt::format("PRIORITY={}", priority_of(r.outcome)),
      "SYSLOG_IDENTIFIER=kasm-bootstrap",
      "KASM_STEP=" + r.id,
      "KASM_OUTCOME=" + std::string(plan::outcome_name(r.outcome)),
      fmt::format("KASM_DURATION_MS={:.0f}", r.duration_ms),
  };
  if (r.outcome == plan::Outcome::kFailed || r.outcome == plan::Outcome::kWarning) {
    f.push_back("KASM_EXIT_CLASS=" + std::string(exit_code_name(r.failure_code)));
    f.push_back("KASM_ERROR=" + scrub(r.message));
  }
  return f;
}

std::vector<std::string> journal_fields(const plan::RunReport& report) {
  const std::string message =
      report.success() ? fmt::format("kasm-bootstrap {}: success in {:.1f} s", kVersion, report.duration_ms / 1000)
                       : fmt::format("kasm-bootstrap {}: FAILED at step {} ({}): {}", kVersion, report.failed_step,
                                     exit_code_name(report.exit_code), report.failure_message);
  std::vector<std::string> f{
      "MESSAGE=" + scrub(message),
      fmt::format("PRIORITY={}", report.success() ? LOG_NOTICE : LOG_ERR),
      std::string("MESSAGE_ID=") + (report.success() ? kRunSucceededMessageId : kRunFailedMessageId),
      "SYSLOG_IDENTIFIER=kasm-bootstrap",
      "KASM_RUN_RESULT=" + std::string(report.success() ? "success" : "failed"),
      fmt::format("KASM_EXIT_CODE={}", static_cast<int>(report.exit_code)),
      "KASM_EXIT_CLASS=" + std::string(exit_code_name(report.exit_code)),
      fmt::format("KASM_DURATION_MS={:.0f}", report.duration_ms),
  };
  if (!report.failed_step.empty()) f.push_back("KASM_FAILED_STEP=" + report.failed_step);
  return f;
}

std::vector<std::string> journal_start_fields(const plan::Plan& plan) {
  return {
      fmt::format("MESSAGE=kasm-bootstrap {}: starting a run of {} steps", kVersion, plan.size()),
      fmt::format("PRIORITY={}", LOG_INFO),
      std::string("MESSAGE_ID=") + kRunStartedMessageId,
      "SYSLOG_IDENTIFIER=kasm-bootstrap",
      fmt::format("KASM_VERSION={}", kVersion),
      fmt::format("KASM_STEPS={}", plan.size()),
  };
}

void JournalObserver::on_run_started(const plan::Plan& plan) { send(journal_start_fields(plan)); }
void JournalObserver::on_step_finished(const plan::StepRecord& record) { send(journal_fields(record)); }
void JournalObserver::on_run_finished(const plan::RunReport& report) { send(journal_fields(report)); }

} // namespace kb::report
