#include "kasm_bootstrap/config/validate.hpp"

#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/kasm/certificates.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>
#include <type_traits>
#include <variant>

namespace kb::config {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};

// Scheme of a URL parsed by libcurl, or empty when it does not parse.
std::string url_scheme(const std::string& url) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  char* raw = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &raw, 0) != CURLUE_OK) return {};
  std::unique_ptr<char, CurlStringDeleter> scheme(raw);
  return scheme.get();
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
  });
}

constexpr std::size_t kMinTokenLength = 8;

// 8-4-4-4-12 hexadecimal digits.
bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

bool is_ip_address(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

struct Checker {
  LoadedConfig& loaded;
  void problem(std::string_view key, std::string message) {
    // One message per key: a value the loader already rejected needs no second opinion.
    for (const auto& p : loaded.problems)
      if (p.key == key) return;
    loaded.problems.push_back({std::string(key), loaded.origins[std::string(key)], std::move(message)});
  }
  void require(std::string_view key, bool present, std::string_view what) {
    if (present) return;
    // A source that could not be read (malformed JSON, a FIFO...) explains every key it
    // would have set: "missing" lines after it only bury the one message that matters.
    for (const auto& p : loaded.problems)
      if (p.key.empty()) return;
    const auto* spec = find_key(key);
    std::string how = spec->secret() ? "the config file, stdin, or " + spec->env_var()
                                     : "the config file, " + spec->env_var() + " or " + spec->flag();
    problem(key, "required " + std::string(what) + " is missing; set it in " + how);
  }
};

} // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "IB") == 0) s.resize(s.size() - 2);
  if (s.size() > 1 && s.back() == 'B') s.pop_back();
  std::uint64_t multiplier = 1;
  if (!s.empty() && !std::isdigit(static_cast<unsigned char>(s.back()))) {
    switch (s.back()) {
    case 'K': multiplier = 1ull << 10; break;
    case 'M': multiplier = 1ull << 20; break;
    case 'G': multiplier = 1ull << 30; break;
    case 'T': multiplier = 1ull << 40; break;
    default: return std::nullopt;
    }
    s.pop_back();
  }
  if (s.empty() || s.size() > 15 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  return std::stoull(s) * multiplier;
}

bool is_address_source(std::string_view source) {
  static constexpr std::array kSources = {
      "auto",         "aws-imds",  "aws-imds-public",  "gcp",   "gcp-public",  "azure", "azure-public", "oci",
      "digitalocean", "openstack", "openstack-public", "route", "first-global"};
  if (source.rfind("interface:", 0) == 0) return source.size() > 10;
  return std::find(kSources.begin(), kSources.end(), source) != kSources.end();
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c); });
}

void validate(LoadedConfig& loaded, Purpose purpose) {
  Checker check{loaded};
  const Config& c = loaded.config;
  const bool registering = purpose == Purpose::kRun;

  // Required keys come from the key table (keys.cpp), so the reference says the same.
  const unsigned needs = purpose == Purpose::kRun       ? kRequiredForRun
                         : purpose == Purpose::kPrebake ? kRequiredForPrebake
                         : purpose == Purpose::kHealth  ? kRequiredForHealth
                                                        : kNotRequired;
  for (const auto& spec : keys()) {
    if ((spec.required_for & needs) == 0) continue;
    const bool present = std::visit(
        [&](auto member) {
          const auto& value = c.*member;
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::int64_t>)
            return true;
          else
            return !value.empty();
        },
        spec.field);
    check.require(spec.name, present, spec.noun);
  }
  // The redactor masks every occurrence of the token in every output. A short token
  // occurs inside ordinary words ("kasm" in "kasm-bootstrap") and the masked word gives it
  // away; from kMinTokenLength characters on, a token that is not a dictionary word does
  // not turn up in our own text. Kasm's installer makes 20-character tokens.
  if (registering && !c.manager_token.empty() && c.manager_token.reveal().size() < kMinTokenLength)
    check.problem("manager_token", "is shorter than " + std::to_string(kMinTokenLength) +
                                       " characters; too short to mask safely in logs (Kasm's own tokens are 20)");

  if (c.manager_address == "$request_host$") {
    check.problem("manager_address",
                  "is '$request_host$', the Zone's default Upstream Auth Address, which an agent cannot reach: "
                  "set the Zone's Upstream Auth Address (Infrastructure > Zones) to the manager's DNS name or IP");
  } else if (!c.manager_address.empty()) {
    if (c.manager_address.find("://") != std::string::npos)
      check.problem("manager_address",
                    "give a host name or IP, not a URL: '" + util::quote_for_message(c.manager_address) + "'");
    else if (!is_host_name(c.manager_address))
      check.problem("manager_address",
                    "'" + util::quote_for_message(c.manager_address) + "' is not a host name or IP address");
  }

  // Kasm's server ids are UUIDs (install.sh draws one from /proc/sys/kernel/random/uuid;
  // Kasm renders {server_id} from its database): docs/kasm-installer.md.
  if (!c.server_id.empty() && !is_uuid(c.server_id))
    check.problem("server_id", "'" + util::quote_for_message(c.server_id) +
                                   "' is not a Kasm server id (a UUID like 3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21)");

  if (!c.agent_address.empty()) {
    if (!is_ip_address(c.agent_address))
      check.problem("agent_address",
                    "'" + util::quote_for_message(c.agent_address) + "' is not an IPv4 or IPv6 address");
    else if (c.agent_address == "0.0.0.0" || c.agent_address == "::")
      check.problem("agent_address", "the unspecified address cannot be an agent address");
  }
  if (!c.external_fqdn.empty() && !is_host_name(c.external_fqdn))
    check.problem("external_fqdn", "'" + util::quote_for_message(c.external_fqdn) + "' is not a host name");

  if (c.address_sources.empty()) check.problem("address_sources", "needs at least one source, e.g. [\"auto\"]");
  for (const auto& source : c.address_sources)
    if (!is_address_source(source))
      check.problem("address_sources",
                    "unknown source '" + util::quote_for_message(source) +
                        "'; known: auto, aws-imds, aws-imds-public, gcp, gcp-public, azure, azure-public, oci, "
                        "digitalocean, openstack, openstack-public, route, "
                        "interface:NAME, first-global");

  if (const auto scheme = url_scheme(c.imds_endpoint); scheme != "http" && scheme != "https")
    check.problem("imds_endpoint", "'" + util::quote_for_message(c.imds_endpoint) + "' is not an http(s) URL");

  if (!c.release_url.empty()) {
    const auto scheme = url_scheme(c.release_url);
    if (scheme.empty())
      check.problem("release_url", "'" + util::quote_for_message(c.release_url) + "' is not a URL");
    else if (scheme == "http" && !c.allow_insecure_http)
      check.problem("release_url", "plain http is refused (the release would be fetched unprotected); use https, "
                                   "or set allow_insecure_http to true");
    else if (scheme != "https" && scheme != "http")
      check.problem("release_url", "scheme '" + scheme + "' is not supported; use https");
  }
  if (!c.release_sha256.empty() && !is_sha256_hex(c.release_sha256))
    check.problem("release_sha256",
                  "expected 64 hexadecimal characters, got " + std::to_string(c.release_sha256.size()) + " characters");

  if (c.swap_size != "auto" && c.swap_size != "off" && !parse_size(c.swap_size))
    check.problem("swap_size",
                  "'" + util::quote_for_message(c.swap_size) + "' is not auto, off, 0, or a size like 512M or 8G");
  for (const auto& spec : keys()) {
    if (spec.kind == ValueKind::kPath || spec.kind == ValueKind::kPathOrEmpty) {
      const auto& value = c.*std::get<std::string Config::*>(spec.field);
      if (value.empty() && spec.kind == ValueKind::kPathOrEmpty) continue;
      if (value.empty() || value.front() != '/')
        check.problem(spec.name, "must be an absolute path, got '" + util::quote_for_message(value) + "'");
    } else if (spec.kind == ValueKind::kPort) {
      const auto value = c.*std::get<std::int64_t Config::*>(spec.field);
      if (value <= 0 || value > 65535)
        check.problem(spec.name, "must be a TCP port between 1 and 65535, got " + std::to_string(value));
    } else if (spec.kind == ValueKind::kConnections) {
      const auto value = c.*std::get<std::int64_t Config::*>(spec.field);
      if (value <= 0 || value > kMaxConnections)
        check.problem(spec.name,
                      "must be between 1 and " + std::to_string(kMaxConnections) + ", got " + std::to_string(value));
    } else if (spec.kind == ValueKind::kSeconds) {
      const auto value = c.*std::get<std::int64_t Config::*>(spec.field);
      if (value <= 0 || value > kMaxSeconds)
        check.problem(spec.name, "must be between 1 and " + std::to_string(kMaxSeconds) + " seconds, got " +
                                     std::to_string(value));
    }
  }

  const bool has_cert = !c.nginx_cert.empty();
  const bool has_key = !c.nginx_key.empty();
  if (has_cert != has_key)
    check.problem(has_cert ? "nginx_key" : "nginx_cert",
                  "nginx_cert and nginx_key come as a pair; the other one is set but this one is blank");
  if (has_cert && c.nginx_cert.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    check.problem("nginx_cert", "does not contain a PEM certificate (-----BEGIN CERTIFICATE-----)");
  if (has_key && c.nginx_key.reveal().find("PRIVATE KEY-----") == std::string::npos)
    check.problem("nginx_key", "does not contain a PEM private key");
  // The full OpenSSL check (key matches, not expired, chain order) runs here too, so
  // `plan` and --dry-run reject a bad pair before anything on the machine changes.
  const bool pem_markers = c.nginx_cert.find("-----BEGIN CERTIFICATE-----") != std::string::npos &&
                           c.nginx_key.reveal().find("PRIVATE KEY-----") != std::string::npos;
  if (has_cert && has_key && pem_markers) {
    std::vector<std::string> names;
    if (!c.external_fqdn.empty()) names.push_back(c.external_fqdn);
    if (!c.agent_address.empty()) names.push_back(c.agent_address);
    const auto verdict = kasm::check_certificate_pair(c.nginx_cert, c.nginx_key.reveal(), names);
    for (const auto& e : verdict.errors)
      check.problem(e.key, e.message);
    for (const auto& w : verdict.warnings)
      log::warn("config: {} {}", w.key, w.message);
  }
  if (has_cert && c.generate_self_signed)
    check.problem("generate_self_signed",
                  "is true but nginx_cert is also set; give a certificate or ask for a generated one, not both");
  if (c.nginx_cert_path.empty() != c.nginx_key_path.empty())
    check.problem(c.nginx_cert_path.empty() ? "nginx_cert_path" : "nginx_key_path",
                  "nginx_cert_path and nginx_key_path come as a pair; the other one is set but this one is blank");
  if (!c.nginx_cert_path.empty() && c.generate_self_signed)
    check.problem("generate_self_signed", "is true but nginx_cert_path is also set; name a pair or ask for a "
                                          "generated one, not both");
}

} // namespace kb::config
