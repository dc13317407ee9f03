#pragma once
// Streaming SHA-256 over OpenSSL EVP, so a download is hashed as its bytes arrive.

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace kb::util {

class Sha256 {
public:
  Sha256();
  void update(std::string_view data);
  std::string hex_digest(); // finishes; the object may not be updated afterwards

private:
  struct Deleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Deleter> ctx_;
};

std::string sha256_hex(std::string_view data);

} // namespace kb::util
