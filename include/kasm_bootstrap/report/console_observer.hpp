#pragma once
// One summary line on the console when the run ends, so `aws ec2 get-console-output`
// (or the provider's serial log) shows success or the failing step without SSH.
//
// The `console` key is a machine path like every other path: with --root / it is the
// real /dev/console; under a test root it is a file inside that root. The device is
// opened without O_CREAT (a missing console is skipped, never created as a regular
// file) and non-blocking (a stuck serial line must not hang the run); under a test root
// the file is created. Any failure is a warning: the summary is a convenience.

#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <filesystem>
#include <string>

namespace kb::report {

// "kasm-bootstrap 0.1.0: SUCCESS server 1f3a... registered in 52.3 s" or
// "kasm-bootstrap 0.1.0: FAILED at step install-agent (install): ... (details: /var/lib/...)"
std::string console_summary(const plan::RunReport& report, const std::string& server_id,
                            const std::filesystem::path& status_file);

class ConsoleObserver final : public plan::Observer {
public:
  ConsoleObserver(const sys::RootFs& fs, std::filesystem::path console, std::string server_id,
                  std::filesystem::path status_file);
  void on_run_finished(const plan::RunReport& report) override;

private:
  const sys::RootFs& fs_;
  std::filesystem::path console_;
  std::string server_id_;
  std::filesystem::path status_file_;
};

} // namespace kb::report
