// The directory form of `--config DIR` (one file per key, as cloud-init write_files or a
// Kubernetes-style secret mount produce): raw file contents, not JSON, so nothing
// guarantees valid UTF-8 or the absence of control bytes.
// Input: sections, each starting with a line "@@ NAME"; NAME becomes the file name
// (a '/' in it is replaced), the following lines its content.

#include "config_checks.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace {

namespace fs = std::filesystem;

fs::path& work_dir() {
  static fs::path dir;
  return dir;
}

void remove_work_dir() {
  std::error_code ec;
  if (!work_dir().empty()) fs::remove_all(work_dir(), ec);
}

std::string file_name(std::string name) {
  for (char& c : name)
    if (c == '/' || c == '\0') c = '_';
  if (name.empty() || name == "." || name == "..") name = "_" + name;
  return name.substr(0, 200);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kb::fuzz::quiet_logging();
  std::string pattern = (fs::temp_directory_path() / "kb-config-dir-fuzz.XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    std::abort();
  }
  work_dir() = pattern;
  std::atexit(remove_work_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view text = kb::fuzz::as_text(data, size);
  const fs::path dir = work_dir() / "config";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directory(dir);

  std::size_t pos = 0;
  std::ofstream* current = nullptr;
  std::ofstream out;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    const auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.rfind("@@ ", 0) == 0) {
      if (current) current->close();
      out = std::ofstream(dir / file_name(std::string(line.substr(3))), std::ios::binary | std::ios::trunc);
      current = &out;
      continue;
    }
    if (current) *current << line << (nl == std::string_view::npos ? "" : "\n");
  }
  if (current) current->close();

  kb::config::LoadInputs inputs;
  inputs.config_path = dir.string();
  const auto loaded = kb::config::load(inputs);
  kb::fuzz::check_loaded(loaded, text);
  kb::redactor().clear();
  return 0;
}
