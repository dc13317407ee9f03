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
  // What is masked (each secret and its spellings), longest first.
  std::vector<std::string> needles() const;
  // Forget everything; tests only.
  void clear();

private:
  mutable std::mutex mutex_;
  std::vector<std::string> needles_; // longest first, so a line inside a key is not half-masked
};

// Process-wide instance: redaction must not depend on every caller passing the right object.
Redactor& redactor();

inline std::string scrub(std::string_view text) { return redactor().scrub(text); }

// The lines of one output stream (a child's), masked also where a secret is split over
// consecutive lines: a terminal-width wrap, `fold`, one chunk per line. Nothing is held
// back, so progress stays live: a line that ends with the first kMinSplitPrefix or more
// bytes of a secret has that end masked at once, and the lines after it are masked for
// as long as they continue that secret. A split after fewer bytes shows those (at most
// kMinSplitPrefix - 1 of a secret that is at least 8 long) and masks the rest.
class LineScrubber {
public:
  static constexpr std::size_t kMinSplitPrefix = 4;

  explicit LineScrubber(const Redactor& r = redactor()) : redactor_(r) {}
  std::string scrub(std::string_view line);

private:
  struct Partial {
    std::string needle;
    std::size_t matched; // bytes of needle seen at the end of the lines so far
  };
  const Redactor& redactor_;
  std::vector<Partial> partial_;
};

} // namespace kb
