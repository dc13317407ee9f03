// Generation of a per-instance self-signed nginx pair: an AMI that carries the
// installer's pair would give every instance the same private key.

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/certificates.hpp"
#include "kasm_bootstrap/kasm/openssl_handles.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>

namespace kb::kasm {
namespace {

using namespace ossl;

[[noreturn]] void fail_generation(const std::string& what) {
  throw Error(ExitCode::kCertificate, "cannot generate a self-signed certificate: " + what + ": " + take_error());
}

void add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) fail_generation("extension " + value);
}

} // namespace

CertificatePair generate_self_signed(const std::vector<std::string>& names, int valid_days) {
  std::vector<std::string> usable;
  for (const auto& n : names)
    if (!n.empty() && std::find(usable.begin(), usable.end(), n) == usable.end()) usable.push_back(n);
  if (usable.empty())
    throw Error(ExitCode::kCertificate, "cannot generate a self-signed certificate without a name: no agent address "
                                        "or external FQDN is known");

  // P-256 rather than RSA-2048: generation takes about a millisecond instead of a few
  // hundred, which is most of the fast path's boot time, and every nginx and browser
  // Kasm supports accepts ECDSA.
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail_generation("EC P-256 key generation");

  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) fail_generation("X509_new");
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) fail_generation("random serial");
  serial_bytes[0] &= 0x7f; // a positive serial
  BnPtr serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) fail_generation("serial");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), valid_days, 0, nullptr))
    fail_generation("validity");
  if (X509_set_pubkey(cert.get(), key.get()) != 1) fail_generation("public key");

  X509_NAME* subject = X509_get_subject_name(cert.get());
  const auto add_entry = [&](const char* field, const std::string& value) {
    if (X509_NAME_add_entry_by_txt(subject, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                                   -1, -1, 0) != 1)
      fail_generation(std::string("subject ") + field);
  };
  add_entry("O", kGeneratedOrganization);
  add_entry("CN", usable.front().substr(0, 64)); // CN is limited to 64 characters
  if (X509_set_issuer_name(cert.get(), subject) != 1) fail_generation("issuer");

  std::string san;
  for (const auto& n : usable)
    san += (san.empty() ? "" : ",") + std::string(is_ip_literal(n) ? "IP:" : "DNS:") + n;
  add_extension(cert.get(), NID_subject_alt_name, san);
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), NID_subject_key_identifier, "hash");

  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) fail_generation("signing");

  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail_generation("PEM encoding");
  return CertificatePair{bio_contents(cert_bio.get()), Secret(bio_contents(key_bio.get()))};
}

} // namespace kb::kasm
