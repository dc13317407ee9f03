// The run's journald entries carry fixed MESSAGE_IDs (start, success, failure), so an
// operator can find every failed bootstrap with `journalctl MESSAGE_ID=...`; step entries
// carry none (they are told apart by KASM_STEP).

#include "kasm_bootstrap/plan/plan.hpp"
#include "kasm_bootstrap/report/journal_observer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace kb;

namespace {

class JournalIdStep final : public plan::Step {
public:
  explicit JournalIdStep(std::string id) : id_(std::move(id)) {}
  std::string_view id() const override { return id_; }
  ExitCode failure_code() const override { return ExitCode::kInstall; }
  plan::Description describe(const plan::StepContext&) const override { return {"test step", {}, true}; }
  plan::Outputs apply(const plan::StepContext&) override { return {}; }

private:
  std::string id_;
};

std::vector<std::string> message_ids(const std::vector<std::string>& fields) {
  std::vector<std::string> ids;
  for (const auto& f : fields)
    if (f.rfind("MESSAGE_ID=", 0) == 0) ids.push_back(f.substr(11));
  return ids;
}

bool is_id128(const std::string& id) {
  return id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

} // namespace

TEST_CASE("journal: start, success and failure of a run carry their own MESSAGE_ID", "[report][journal]") {
  std::vector<std::unique_ptr<plan::Step>> steps;
  steps.push_back(std::make_unique<JournalIdStep>("one"));
  steps.push_back(std::make_unique<JournalIdStep>("two"));
  const plan::Plan plan(std::move(steps));

  const auto start = report::journal_start_fields(plan);
  CHECK(message_ids(start) == std::vector<std::string>{report::kRunStartedMessageId});
  CHECK(std::find(start.begin(), start.end(), "KASM_STEPS=2") != start.end());

  plan::RunReport ok;
  ok.exit_code = ExitCode::kOk;
  CHECK(message_ids(report::journal_fields(ok)) == std::vector<std::string>{report::kRunSucceededMessageId});

  plan::RunReport failed;
  failed.exit_code = ExitCode::kInstall;
  failed.failed_step = "install-agent";
  CHECK(message_ids(report::journal_fields(failed)) == std::vector<std::string>{report::kRunFailedMessageId});

  // Each id is journald's form (32 lower-case hex digits), and the three differ.
  const std::set<std::string> ids{report::kRunStartedMessageId, report::kRunSucceededMessageId,
                                  report::kRunFailedMessageId};
  CHECK(ids.size() == 3);
  for (const auto& id : ids)
    CHECK(is_id128(id));

  // A step's entry is not a run event: no MESSAGE_ID.
  plan::StepRecord record{"one", plan::Outcome::kFailed, 3, "boom", ExitCode::kInstall, {}};
  CHECK(message_ids(report::journal_fields(record)).empty());
}
