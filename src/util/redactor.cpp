#include "kasm_bootstrap/util/redactor.hpp"

#include "kasm_bootstrap/util/secret.hpp"

#include <algorithm>

namespace kb {
namespace {

// Short fragments would mask ordinary words; PEM body lines are 64 characters.
constexpr std::size_t kMinLineLength = 16;
// A whole secret shorter than this would turn "tok" in "manager_token" into "manager_****en"
// everywhere; such values are not real tokens (validation rejects them) and Secret still
// never serialises them.
constexpr std::size_t kMinSecretLength = 4;

std::string trim(std::string_view s) {
  const auto* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

} // namespace

void Redactor::add(std::string_view secret) {
  std::vector<std::string> found;
  const std::string whole = trim(secret);
  if (whole.size() < kMinSecretLength) return;
  found.push_back(whole);
  if (whole.find('\n') != std::string::npos) {
    std::string escaped;
    for (char c : whole) {
      if (c == '\n')
        escaped += "\\n";
      else if (c != '\r')
        escaped += c;
    }
    found.push_back(escaped);
    std::size_t start = 0;
    while (start <= whole.size()) {
      auto end = whole.find('\n', start);
      if (end == std::string::npos) end = whole.size();
      auto line = trim(std::string_view(whole).substr(start, end - start));
      // "-----BEGIN PRIVATE KEY-----" is not secret and helps the reader.
      if (line.size() >= kMinLineLength && line.rfind("-----", 0) != 0) found.push_back(line);
      start = end + 1;
    }
  }
  std::lock_guard lock(mutex_);
  for (auto& f : found)
    if (std::find(needles_.begin(), needles_.end(), f) == needles_.end()) needles_.push_back(std::move(f));
  std::sort(needles_.begin(), needles_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string Redactor::scrub(std::string_view text) const {
  std::string out(text);
  std::lock_guard lock(mutex_);
  for (const auto& needle : needles_) {
    std::size_t pos = 0;
    while ((pos = out.find(needle, pos)) != std::string::npos) {
      out.replace(pos, needle.size(), kRedactedMask);
      pos += std::char_traits<char>::length(kRedactedMask);
    }
  }
  return out;
}

void Redactor::clear() {
  std::lock_guard lock(mutex_);
  needles_.clear();
}

Redactor& redactor() {
  static Redactor instance;
  return instance;
}

} // namespace kb
