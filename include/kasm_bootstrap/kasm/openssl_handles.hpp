#pragma once
// RAII owners for the OpenSSL objects the certificate code handles, and a way to turn
// OpenSSL's thread-local error queue into one readable reason (and empty it, so a stale
// entry never shows up in the next, unrelated message).

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace kb::kasm::ossl {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct ExtensionFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesFree>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, ExtensionFree>;

// A read-only memory BIO over `data`, which must outlive it.
BioPtr memory_bio(std::string_view data);
// Everything written to a memory BIO so far.
std::string bio_contents(BIO* bio);
// The reason of the oldest queued error ("no start line"), or `fallback`; clears the queue.
std::string take_error(std::string_view fallback = "unknown OpenSSL error");

} // namespace kb::kasm::ossl
