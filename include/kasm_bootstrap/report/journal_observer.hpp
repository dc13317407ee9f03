#pragma once
// One structured journald entry per step and one for the run, so
// `journalctl KASM_STEP=install-agent` or `journalctl KASM_OUTCOME=failed` finds them.
// sd_journal_send returns 0 even when no journal runs, so this costs nothing elsewhere.
//
// The run's start, success and failure entries carry a fixed MESSAGE_ID (sd-id128
// values, drawn once; docs/platform.md), so `journalctl MESSAGE_ID=...` finds every
// failed bootstrap of a fleet's images whatever the message text says.

#include "kasm_bootstrap/plan/executor.hpp"

#include <string>
#include <vector>

namespace kb::report {

inline constexpr const char* kRunStartedMessageId = "11bbf836cc6244d395de47580a28cd88";
inline constexpr const char* kRunSucceededMessageId = "21ee7576cc7141bf82072530e28fb5ac";
inline constexpr const char* kRunFailedMessageId = "0ed2b605d9ef4cc7bfc85e53d453bff8";

// The fields of one entry ("MESSAGE=...", "PRIORITY=3", "KASM_STEP=...", ...), redacted.
std::vector<std::string> journal_fields(const plan::StepRecord& record);
std::vector<std::string> journal_fields(const plan::RunReport& report);
// The run's start: how many steps, and the tool's version.
std::vector<std::string> journal_start_fields(const plan::Plan& plan);

class JournalObserver final : public plan::Observer {
public:
  void on_run_started(const plan::Plan& plan) override;
  void on_step_finished(const plan::StepRecord& record) override;
  void on_run_finished(const plan::RunReport& report) override;
};

} // namespace kb::report
