#pragma once
// The nginx certificate of kasm_proxy (docs/kasm-installer.md §8, item 4): checking a PEM
// pair before anything is written, and making a fresh self-signed pair for one instance.
// Used twice: by config validation (so `plan` rejects a bad pair before any change) and
// by the install-certificates step (again, with the detected agent address).

#include "kasm_bootstrap/util/secret.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::kasm {

inline constexpr const char* kCertsDir = "/opt/kasm/current/certs";
inline constexpr const char* kCertFile = "kasm_nginx.crt";
inline constexpr const char* kKeyFile = "kasm_nginx.key";
// Subject organisation of pairs we generate, so a later check can recognise them.
inline constexpr const char* kGeneratedOrganization = "kasm-bootstrap";

struct CertificateSummary {
  std::string subject; // one line, RFC 2253 ("CN=agent.example.com,O=...")
  std::string issuer;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::string not_before; // "2026-11-28T19:30:00Z"
  std::string not_after;
  std::int64_t not_after_epoch = 0;
  std::string sha256; // fingerprint of the DER leaf, lower-case hex
  std::size_t chain_length = 0;
  bool self_signed = false;
  std::string organization;
};

struct CertificateProblem {
  std::string key;     // the configuration key it is about: nginx_cert or nginx_key
  std::string message; // never contains key material
};

struct CertificateCheck {
  std::vector<CertificateProblem> errors;   // the pair must not be installed
  std::vector<CertificateProblem> warnings; // install, but tell the operator
  std::optional<CertificateSummary> leaf;   // when the first certificate parsed
  bool ok() const { return errors.empty(); }
};

// Parses `cert_pem` (leaf first, then intermediates) and `key_pem` and checks: both parse,
// the key belongs to the first certificate, the leaf is inside its validity period
// (expired = error, not yet valid or expiring within 14 days = warning), each certificate
// is issued by the next one (chain order), and `names` (FQDNs or IP addresses; empty
// strings ignored) are covered by the leaf (warning when not).
CertificateCheck check_certificate_pair(std::string_view cert_pem, std::string_view key_pem,
                                        const std::vector<std::string>& names,
                                        std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Summary of the first certificate in `cert_pem`; nullopt when none parses.
std::optional<CertificateSummary> summarize_certificate(std::string_view cert_pem);

struct CertificatePair {
  std::string cert_pem;
  Secret key_pem;
};

// A new RSA-2048 key and a self-signed certificate (SHA-256, serverAuth) whose subject
// CN is the first of `names` and whose subjectAltNames are all of them (IP addresses as
// IP entries). Valid from an hour ago (clock skew at boot) for `valid_days`.
CertificatePair generate_self_signed(const std::vector<std::string>& names, int valid_days = 3650);

// True when `name` is an IPv4 or IPv6 address literal.
bool is_ip_literal(std::string_view name);

} // namespace kb::kasm
