#pragma once
// One structured journald entry per step and one for the run, so
// `journalctl KASM_STEP=install-agent` or `journalctl KASM_OUTCOME=failed` finds them.
// sd_journal_send returns 0 even when no journal runs, so this costs nothing elsewhere.

#include "kasm_bootstrap/plan/executor.hpp"

#include <string>
#include <vector>

namespace kb::report {

// The fields of one entry ("MESSAGE=...", "PRIORITY=3", "KASM_STEP=...", ...), redacted.
std::vector<std::string> journal_fields(const plan::StepRecord& record);
std::vector<std::string> journal_fields(const plan::RunReport& report);

class JournalObserver final : public plan::Observer {
public:
  void on_step_finished(const plan::StepRecord& record) override;
  void on_run_finished(const plan::RunReport& report) override;
};

} // namespace kb::report
