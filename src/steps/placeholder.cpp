#include "kasm_bootstrap/steps/placeholder.hpp"

namespace kb::steps {

PlaceholderStep::PlaceholderStep(std::string_view id, std::vector<std::string_view> depends_on, ExitCode failure_code,
                                 std::string would_do, std::string tracking_issue)
    : id_(id), depends_on_(std::move(depends_on)), failure_code_(failure_code), would_do_(std::move(would_do)),
      tracking_issue_(std::move(tracking_issue)) {}

plan::Description PlaceholderStep::describe(const plan::StepContext&) const {
  plan::Description d;
  d.summary = "NOT IMPLEMENTED YET (placeholder, " + tracking_issue_ + "): will " + would_do_;
  d.implemented = false;
  return d;
}

plan::Outputs PlaceholderStep::apply(const plan::StepContext&) {
  throw Error(ExitCode::kNotImplemented, "step " + std::string(id_) + " is a placeholder in this build (" +
                                             tracking_issue_ + "); nothing was changed by it");
}

} // namespace kb::steps
