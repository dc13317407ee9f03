// preflight: facts about the machine every later step relies on, checked before
// anything changes — the root directory exists and the state directory can be made.

#include "kasm_bootstrap/steps/steps.hpp"

#include <unistd.h>

namespace kb::steps {
namespace {

std::string os_pretty_name(const sys::RootFs& fs) {
  const auto text = fs.read_file("/etc/os-release", std::size_t{64} * 1024);
  if (!text) return "unknown";
  const std::string key = "PRETTY_NAME=";
  for (std::size_t pos = 0; pos < text->size();) {
    auto end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(pos, end - pos);
    if (line.rfind(key, 0) == 0) {
      std::string v = line.substr(key.size());
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
    pos = end + 1;
  }
  return "unknown";
}

class Preflight final : public plan::Step {
public:
  std::string_view id() const override { return id::kPreflight; }
  ExitCode failure_code() const override { return ExitCode::kInternal; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    plan::Description d;
    d.summary = "check the machine: root directory, operating system, state directory";
    d.actions.push_back({"check", "/etc/os-release", "operating system"});
    d.actions.push_back({"write", ctx.config.state_dir, "directory, mode 0700"});
    return d;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& fs = ctx.machine.fs;
    // A --root that does not exist was refused by the command before anything was written
    // (cli/commands.cpp, require_root_directory).
    if (fs.is_real_root() && ::geteuid() != 0)
      throw Error(ExitCode::kInternal, "must run as root to change this machine (or use --dry-run / --root DIR)");
    fs.create_directories(ctx.config.state_dir, 0700);
    return {{"os", os_pretty_name(fs)}};
  }
};

} // namespace

std::unique_ptr<plan::Step> make_preflight() { return std::make_unique<Preflight>(); }

} // namespace kb::steps
