#include "kasm_bootstrap/kasm/openssl_handles.hpp"

#include <openssl/err.h>

#include <climits>

namespace kb::kasm::ossl {

BioPtr memory_bio(std::string_view data) {
  const int size = data.size() > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(data.size());
  return BioPtr(BIO_new_mem_buf(data.data(), size));
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 && data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string take_error(std::string_view fallback) {
  const unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return std::string(fallback);
  const char* reason = ERR_reason_error_string(first);
  return reason ? reason : std::string(fallback);
}

} // namespace kb::kasm::ossl
