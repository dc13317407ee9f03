#pragma once
// A step of the plan (ARCHITECTURE.md, "Key ideas"): it can describe itself (for
// --dry-run, secrets redacted by the output channel), check whether its work is already
// done (read-only), and apply itself. Steps exchange results through named outputs
// ("agent_address"), which the executor records in the state file so a resumed run still
// has them.

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/machine.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::plan {

using Outputs = std::map<std::string, std::string>;

// Outputs of finished steps, visible to the steps that run after them.
class Facts {
public:
  void merge(const Outputs& outputs);
  std::optional<std::string> get(const std::string& key) const;
  Outputs snapshot() const;

private:
  mutable std::mutex mutex_;
  Outputs values_;
};

// One concrete thing a step would do: "write /etc/fstab (mode 0644)", "run install.sh ...".
struct Action {
  std::string kind;   // write | remove | run | fetch | http | swapon | wait | check | note
  std::string target; // path, URL, command line
  std::string detail; // mode, size, reason
};

struct Description {
  std::string summary;
  std::vector<Action> actions;
  bool implemented = true; // false for placeholders, which say so in summary
};

struct StepContext {
  const config::Config& config;
  Machine& machine;
  const Facts& facts;
  const std::atomic<bool>& cancelled;
};

class Step {
public:
  virtual ~Step() = default;
  virtual std::string_view id() const = 0;
  virtual std::vector<std::string_view> depends_on() const { return {}; }
  // Exit code class when this step fails (error.hpp).
  virtual ExitCode failure_code() const = 0;
  // A step that is not required only warns when it fails; the run goes on.
  virtual bool required(const config::Config&) const { return true; }
  virtual Description describe(const StepContext& context) const = 0;
  // Read-only: when the work is already in place, return the outputs it would produce.
  virtual std::optional<Outputs> check(const StepContext&) const { return std::nullopt; }
  // Does the work; throws (preferably kb::Error) on failure. Must leave nothing half-done.
  virtual Outputs apply(const StepContext& context) = 0;
};

} // namespace kb::plan
