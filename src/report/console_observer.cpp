#include "kasm_bootstrap/report/console_observer.hpp"

#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/version.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace kb::report {

std::string console_summary(const plan::RunReport& report, const std::string& server_id,
                            const std::filesystem::path& status_file) {
  std::string line;
  if (report.success()) {
    line = fmt::format("kasm-bootstrap {}: SUCCESS{} in {:.1f} s", kVersion,
                       server_id.empty() ? std::string() : " agent " + server_id + " ready", report.duration_ms / 1000);
  } else {
    std::string why = report.failure_message;
    for (char& c : why)
      if (c == '\n' || c == '\r') c = ' ';
    if (why.size() > 300) why = why.substr(0, 300) + "...";
    line = fmt::format("kasm-bootstrap {}: FAILED at step {} ({}, exit {}): {} (details: {})", kVersion,
                       report.failed_step.empty() ? "-" : report.failed_step, exit_code_name(report.exit_code),
                       static_cast<int>(report.exit_code), why, status_file.string());
  }
  return scrub(line);
}

ConsoleObserver::ConsoleObserver(const sys::RootFs& fs, std::filesystem::path console, std::string server_id,
                                 std::filesystem::path status_file)
    : fs_(fs), console_(std::move(console)), server_id_(std::move(server_id)), status_file_(std::move(status_file)) {}

void ConsoleObserver::on_run_finished(const plan::RunReport& report) {
  if (console_.empty()) return;
  try {
    const auto path = fs_.host_path(console_);
    int flags = O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK;
    if (!fs_.is_real_root()) flags |= O_CREAT;
    sys::UniqueFd fd = fs_.open_file(console_, flags, 0644);
    if (!fd) {
      log::warn("cannot write the summary to the console {}: {}", path.string(), util::errno_text(errno));
      return;
    }
    // \r: a serial console in raw mode would otherwise staircase the next line.
    const std::string text = console_summary(report, server_id_, status_file_) + "\r\n";
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      log::warn("short write of the summary to the console {}", path.string());
  } catch (const std::exception& e) {
    log::warn("cannot write the summary to the console {}: {}", console_.string(), e.what());
  }
}

} // namespace kb::report
