#pragma once
// PLACEHOLDER support: a step whose real work belongs to a later issue. It describes
// itself as not implemented (dry-run shows that plainly) and fails with
// ExitCode::kNotImplemented if a real run reaches it. Delete a step's use of this class
// when the step becomes real.

#include "kasm_bootstrap/plan/step.hpp"

#include <string>
#include <vector>

namespace kb::steps {

class PlaceholderStep : public plan::Step {
public:
  PlaceholderStep(std::string_view id, std::vector<std::string_view> depends_on, ExitCode failure_code,
                  std::string would_do, std::string tracking_issue);

  std::string_view id() const override { return id_; }
  std::vector<std::string_view> depends_on() const override { return depends_on_; }
  ExitCode failure_code() const override { return failure_code_; }
  plan::Description describe(const plan::StepContext&) const override;
  plan::Outputs apply(const plan::StepContext&) override;

private:
  std::string_view id_;
  std::vector<std::string_view> depends_on_;
  ExitCode failure_code_;
  std::string would_do_;
  std::string tracking_issue_;
};

} // namespace kb::steps
