// The `--config FILE` path: JSON text -> loader -> validation for every command, then
// serialisation for dry-run. Input: the file's bytes.

#include "config_checks.hpp"

#include <sstream>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kb::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string text(kb::fuzz::as_text(data, size));
  std::istringstream in(text);
  kb::config::LoadInputs inputs;
  inputs.config_path = "-";
  inputs.stdin_stream = &in;
  const auto loaded = kb::config::load(inputs);
  kb::fuzz::check_loaded(loaded, text);
  // Secrets register with the process redactor for the life of the process; a fuzzing
  // process loads millions of them.
  kb::redactor().clear();
  return 0;
}
