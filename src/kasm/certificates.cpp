#include "kasm_bootstrap/kasm/certificates.hpp"

#include "kasm_bootstrap/kasm/openssl_handles.hpp"
#include "kasm_bootstrap/util/utc_time.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctime>
#include <fmt/format.h>

namespace kb::kasm {
namespace {

using namespace ossl;

constexpr std::int64_t kExpiryWarningSeconds = std::int64_t{14} * 24 * 3600;

std::optional<std::int64_t> asn1_epoch(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string name_line(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  return bio_contents(bio.get());
}

std::string name_entry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  std::string hex;
  for (unsigned int i = 0; i < len; ++i)
    hex += fmt::format("{:02x}", md[i]);
  return hex;
}

CertificateSummary summarize(X509* cert, std::size_t chain_length) {
  CertificateSummary s;
  s.subject = name_line(X509_get_subject_name(cert));
  s.issuer = name_line(X509_get_issuer_name(cert));
  s.organization = name_entry(X509_get_subject_name(cert), NID_organizationName);
  if (const auto nb = asn1_epoch(X509_get0_notBefore(cert))) s.not_before = util::utc_timestamp_from_epoch(*nb);
  if (const auto na = asn1_epoch(X509_get0_notAfter(cert))) {
    s.not_after = util::utc_timestamp_from_epoch(*na);
    s.not_after_epoch = *na;
  }
  s.sha256 = fingerprint(cert);
  s.chain_length = chain_length;
  s.self_signed = X509_check_issued(cert, cert) == X509_V_OK;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* dns = gn->d.dNSName;
      s.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                               static_cast<std::size_t>(ASN1_STRING_length(dns)));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {0};
      const int len = ASN1_STRING_length(ip);
      const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family && inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) s.ip_addresses.emplace_back(text);
    }
  }
  ERR_clear_error();
  return s;
}

std::vector<X509Ptr> parse_chain(std::string_view pem, std::string& error) {
  std::vector<X509Ptr> chain;
  auto bio = memory_bio(pem);
  while (bio) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    chain.push_back(std::move(cert));
  }
  // Running out of certificates ends the loop with "no start line"; only a failure
  // before the first certificate is a parse error worth reporting.
  const std::string reason = take_error("no PEM certificate found");
  if (chain.empty()) error = reason;
  return chain;
}

// Never prompts: an encrypted key must fail, not wait for a passphrase on the console.
extern "C" int refuse_passphrase(char*, int, int, void*) { return -1; }

PkeyPtr parse_key(std::string_view pem, std::string& error) {
  auto bio = memory_bio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr) : nullptr);
  if (!key) {
    error = take_error("no PEM private key found");
    if (pem.find("ENCRYPTED") != std::string_view::npos)
      error = "the key is encrypted with a passphrase; give the unencrypted key";
  }
  ERR_clear_error();
  return key;
}

bool covers(X509* cert, const std::string& name) {
  const int r = is_ip_literal(name) ? X509_check_ip_asc(cert, name.c_str(), 0)
                                    : X509_check_host(cert, name.c_str(), name.size(), 0, nullptr);
  ERR_clear_error();
  return r == 1;
}

std::string names_list(const CertificateSummary& s) {
  std::string out;
  for (const auto& n : s.dns_names)
    out += (out.empty() ? "" : ", ") + n;
  for (const auto& n : s.ip_addresses)
    out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none (no subjectAltName; subject " + s.subject + ")" : out;
}

} // namespace

bool is_ip_literal(std::string_view name) {
  const std::string text(name);
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

std::optional<CertificateSummary> summarize_certificate(std::string_view cert_pem) {
  std::string error;
  auto chain = parse_chain(cert_pem, error);
  if (chain.empty()) return std::nullopt;
  return summarize(chain.front().get(), chain.size());
}

CertificateCheck check_certificate_pair(std::string_view cert_pem, std::string_view key_pem,
                                        const std::vector<std::string>& names,
                                        std::chrono::system_clock::time_point now) {
  CertificateCheck check;
  auto error = [&](const char* key, std::string message) { check.errors.push_back({key, std::move(message)}); };
  auto warning = [&](const char* key, std::string message) { check.warnings.push_back({key, std::move(message)}); };

  std::string cert_error, key_error;
  auto chain = parse_chain(cert_pem, cert_error);
  auto key = parse_key(key_pem, key_error);
  if (chain.empty()) {
    if (cert_pem.find("PRIVATE KEY-----") != std::string_view::npos)
      error("nginx_cert", "holds a private key, not a certificate (were nginx_cert and nginx_key swapped?)");
    else
      error("nginx_cert", "cannot parse a PEM certificate: " + cert_error);
  }
  if (!key) error("nginx_key", "cannot parse the PEM private key: " + key_error);
  if (chain.empty()) return check;

  X509* leaf = chain.front().get();
  check.leaf = summarize(leaf, chain.size());
  const auto& s = *check.leaf;

  if (key && X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    std::size_t matching = 0;
    for (std::size_t i = 1; i < chain.size() && !matching; ++i) {
      if (X509_check_private_key(chain[i].get(), key.get()) == 1) matching = i + 1;
      ERR_clear_error();
    }
    if (matching)
      error("nginx_cert", fmt::format("the key belongs to certificate #{} of the chain, not the first: put the "
                                      "server certificate first, then its intermediates",
                                      matching));
    else
      error("nginx_key", "does not belong to the certificate (subject " + s.subject + ")");
  }

  const auto now_epoch = static_cast<std::int64_t>(std::chrono::system_clock::to_time_t(now));
  const auto not_before = asn1_epoch(X509_get0_notBefore(leaf));
  const auto not_after = asn1_epoch(X509_get0_notAfter(leaf));
  if (!not_before || !not_after) {
    error("nginx_cert", "has an unreadable validity period");
  } else if (*not_after <= now_epoch) {
    error("nginx_cert", "expired on " + s.not_after + " (subject " + s.subject + ")");
  } else {
    if (*not_before > now_epoch)
      warning("nginx_cert", "is not valid before " + s.not_before + "; this machine's clock says " +
                                util::utc_timestamp_from_epoch(now_epoch) + " (clients will reject it until then)");
    if (*not_after - now_epoch < kExpiryWarningSeconds) warning("nginx_cert", "expires soon, on " + s.not_after);
  }

  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    if (X509_check_issued(chain[i + 1].get(), chain[i].get()) != X509_V_OK)
      error("nginx_cert", fmt::format("chain out of order: certificate #{} ({}) did not issue certificate #{} "
                                      "(issuer {}); list the server certificate first, then each issuer in turn",
                                      i + 2, name_line(X509_get_subject_name(chain[i + 1].get())), i + 1,
                                      name_line(X509_get_issuer_name(chain[i].get()))));
    ERR_clear_error();
  }

  for (const auto& name : names) {
    if (name.empty()) continue;
    if (!covers(leaf, name))
      warning("nginx_cert", "does not cover '" + name + "' (its names: " + names_list(s) +
                                "); browsers will warn when they reach the agent by that name");
  }
  ERR_clear_error();
  return check;
}

} // namespace kb::kasm
