#include "kasm_bootstrap/util/redactor.hpp"

#include "kasm_bootstrap/util/secret.hpp"

#include <algorithm>
#include <cctype>

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

// The spellings a secret takes when a child or a library re-encodes it before printing:
// a second line of defence behind masking on the parts (describe_command masks each
// argument before it quotes). Only those that differ from the plain text are returned.
std::vector<std::string> encodings(const std::string& plain) {
  static constexpr const char* kHex = "0123456789ABCDEF";
  static constexpr std::string_view kShellSpecial = " \t\n'\"\\$`!*?[]{}()<>|&;#~";
  std::string json, single_quoted, backslashed, url;
  for (const char c : plain) {
    const auto u = static_cast<unsigned char>(c);
    // JSON string body (nlohmann, Python's json.dumps with ensure_ascii off).
    if (c == '"' || c == '\\') {
      json += '\\';
      json += c;
    } else if (c == '\n') {
      json += "\\n";
    } else if (c == '\t') {
      json += "\\t";
    } else if (u < 0x20) {
      json += "\\u00";
      json += kHex[u >> 4];
      json += kHex[u & 15];
    } else {
      json += c;
    }
    // Inside '...' for the shell ('\'' closes, escapes and reopens).
    single_quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    // printf %q and bash's ${x@Q}-less escaping: a backslash before each special byte.
    if (kShellSpecial.find(c) != std::string_view::npos) backslashed += '\\';
    backslashed += c;
    // Percent-encoding of everything but RFC 3986's unreserved characters.
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      url += c;
    } else {
      url += '%';
      url += kHex[u >> 4];
      url += kHex[u & 15];
    }
  }
  std::vector<std::string> out;
  for (auto* e : {&json, &single_quoted, &backslashed, &url})
    if (*e != plain && std::find(out.begin(), out.end(), *e) == out.end()) out.push_back(*e);
  return out;
}

} // namespace

void Redactor::add(std::string_view secret) {
  std::vector<std::string> found;
  const std::string whole = trim(secret);
  if (whole.size() < kMinSecretLength) return;
  found.push_back(whole);
  for (auto& e : encodings(whole))
    found.push_back(std::move(e));
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

std::vector<std::string> Redactor::needles() const {
  std::lock_guard lock(mutex_);
  return needles_;
}

std::string LineScrubber::scrub(std::string_view line) {
  // Whole secrets first: what is left literal is what a split could still reveal.
  std::string text = redactor_.scrub(line);
  std::size_t mask_head = 0; // bytes at the start that continue a secret
  std::size_t mask_tail = 0; // bytes at the end that begin one
  std::vector<Partial> next;
  for (const auto& p : partial_) {
    const std::string_view rest = std::string_view(p.needle).substr(p.matched);
    if (text.size() >= rest.size() && text.compare(0, rest.size(), rest) == 0) {
      mask_head = std::max(mask_head, rest.size());
    } else if (!text.empty() && rest.compare(0, text.size(), text) == 0) {
      mask_head = text.size(); // the whole line is the secret's middle
      next.push_back({p.needle, p.matched + text.size()});
    }
  }
  for (const auto& needle : redactor_.needles()) {
    if (needle.size() < 2 * kMinSplitPrefix) continue; // see kMinSecretLength
    for (std::size_t k = std::min(text.size(), needle.size() - 1); k > 0; --k) {
      if (text.compare(text.size() - k, k, needle, 0, k) != 0) continue;
      if (k >= kMinSplitPrefix) mask_tail = std::max(mask_tail, k);
      next.push_back({needle, k});
      break;
    }
  }
  partial_ = std::move(next);
  if (mask_head + mask_tail >= text.size()) return mask_head + mask_tail == 0 ? text : std::string(kRedactedMask);
  std::string out;
  if (mask_head > 0) out += kRedactedMask;
  out.append(text, mask_head, text.size() - mask_head - mask_tail);
  if (mask_tail > 0) out += kRedactedMask;
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
