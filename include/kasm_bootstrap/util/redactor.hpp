#pragma once
// The one redaction point. Every channel that leaves the process (log sinks, stdout,
// the status and state files, error messages shown to the operator) passes its text
// through scrub(). Secrets are registered when they are loaded (see Secret), so a step
// cannot leak one by forgetting to redact it.

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kb {

class Redactor {
public:
  // Registers a secret. Multi-line values (PEM keys) also register each long line and
  // the literal-"\n" spelling, since tools print keys line by line or escaped.
  void add(std::string_view secret);
  std::string scrub(std::string_view text) const;
  // Forget everything; tests only.
  void clear();

private:
  mutable std::mutex mutex_;
  std::vector<std::string> needles_; // longest first, so a line inside a key is not half-masked
};

// Process-wide instance: redaction must not depend on every caller passing the right object.
Redactor& redactor();

inline std::string scrub(std::string_view text) { return redactor().scrub(text); }

} // namespace kb
