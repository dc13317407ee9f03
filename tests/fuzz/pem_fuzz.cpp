// nginx_cert / nginx_key as the operator pastes them: certificate chain and key parsed
// with OpenSSL, key match, validity period, chain order, name coverage.
// Input: sections separated by a line "--8<--": the certificate PEM, the key PEM, the
// names to cover (one per line). Without a separator the whole input is used as both
// (a combined "cert + key" file, which PEM reading must sort out itself).

#include "fuzz_support.hpp"

#include "kasm_bootstrap/kasm/certificates.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace {

constexpr std::string_view kSeparator = "\n--8<--\n";
// A fixed clock keeps every run of a seed deterministic: 2027-01-01T00:00:00Z (the
// seeds were made in November 2026, so one-day certificates are expired and the rest valid).
constexpr std::int64_t kNow = 1798761600;

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto pos = text.find(kSeparator);
    if (pos == std::string_view::npos) break;
    parts.push_back(text.substr(0, pos));
    text.remove_prefix(pos + kSeparator.size());
  }
  parts.push_back(text);
  return parts;
}

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    out.emplace_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

bool is_hex(const std::string& s) {
  for (const char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

bool is_base64(const std::string& s) {
  for (const char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') return false;
  return true;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kb::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view text = kb::fuzz::as_text(data, size);
  const auto parts = split(text);
  const std::string_view cert = parts[0];
  const std::string_view key = parts.size() > 1 ? parts[1] : parts[0];
  std::vector<std::string> names;
  if (parts.size() > 2) names = lines(parts[2]);

  const auto now = std::chrono::system_clock::from_time_t(static_cast<std::time_t>(kNow));
  const auto check = kb::kasm::check_certificate_pair(cert, key, names, now);
  const auto summary = kb::kasm::summarize_certificate(cert);

  // Both read the same chain the same way.
  FUZZ_CHECK(check.leaf.has_value() == summary.has_value(), "check and summary disagree on parsing");
  if (summary) {
    FUZZ_CHECK(check.leaf->sha256 == summary->sha256, summary->sha256);
    FUZZ_CHECK(check.leaf->subject == summary->subject, summary->subject);
    FUZZ_CHECK(check.leaf->chain_length == summary->chain_length && summary->chain_length >= 1, "chain length");
    FUZZ_CHECK(summary->sha256.size() == 64 && is_hex(summary->sha256), summary->sha256);
  }

  bool key_error = false;
  for (const auto* list : {&check.errors, &check.warnings})
    for (const auto& p : *list) {
      FUZZ_CHECK(p.key == "nginx_cert" || p.key == "nginx_key", p.key);
      FUZZ_CHECK(!p.message.empty(), p.key);
      if (p.key == "nginx_key" && list == &check.errors) key_error = true;
    }

  if (check.ok()) {
    FUZZ_CHECK(check.leaf.has_value(), "accepted without a certificate");
    FUZZ_CHECK(!key_error, "accepted with a key error");
    FUZZ_CHECK(check.leaf->not_after_epoch > kNow, "accepted an expired certificate: " + check.leaf->not_after);
  }
  if (!check.leaf) FUZZ_CHECK(!check.ok(), "no certificate, yet no error");

  // No message may carry key material: no base64 body line of the key (unless the same
  // line is also in the certificate section or a name, which a message may quote).
  if (parts.size() > 1) {
    for (const auto& line : lines(key)) {
      if (line.size() < 16 || !is_base64(line)) continue;
      if (cert.find(line) != std::string_view::npos ||
          text.substr(key.data() + key.size() - text.data()).find(line) != std::string_view::npos)
        continue;
      for (const auto* list : {&check.errors, &check.warnings})
        for (const auto& p : *list)
          FUZZ_CHECK(p.message.find(line) == std::string::npos, "key material in a message");
    }
  }

  for (const auto& name : names)
    (void)kb::kasm::is_ip_literal(name);
  return 0;
}
