#include "kasm_bootstrap/net/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <system_error>

namespace kb::net {
namespace {

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, SlistDeleter>;

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  CURL* handle = nullptr;
  bool over_limit = false;
  bool aborted_by_caller = false;
  bool status_reported = false;
};

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t->status_reported) {
    t->status_reported = true;
    // libcurl skips the bodies of redirects it follows, so this is the final status.
    if (t->request->on_status) {
      long status = 0;
      curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
      if (!t->request->on_status(status)) {
        t->aborted_by_caller = true;
        return 0;
      }
    }
    // libcurl's progress callback can lag behind the first body chunks; a receiver that
    // checks the expected size (free disk) must hear it before it writes anything.
    curl_off_t length = -1;
    if (t->request->on_progress &&
        curl_easy_getinfo(t->handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK && length > 0)
      t->request->on_progress(0, static_cast<std::uint64_t>(length));
  }
  t->response->bytes_received += n;
  if (t->request->on_body) {
    if (!t->request->on_body(std::string_view(data, n))) {
      t->aborted_by_caller = true;
      return 0;
    }
    return n;
  }
  if (t->response->body.size() + n > t->request->max_buffered_body) {
    t->over_limit = true;
    return 0;
  }
  t->response->body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  // A new status line (redirect, 100-continue) starts a fresh header set.
  if (line.rfind("HTTP/", 0) == 0) t->response->headers.clear();
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    t->response->headers.emplace_back(std::move(name), std::string(value));
  }
  return n;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->abort && t->request->abort->load()) {
    t->aborted_by_caller = true;
    return 1; // CURLE_ABORTED_BY_CALLBACK
  }
  if (t->request->on_progress)
    t->request->on_progress(static_cast<std::uint64_t>(dlnow), static_cast<std::uint64_t>(dltotal));
  return 0;
}

TransportError classify(CURLcode code) {
  switch (code) {
  case CURLE_OK: return TransportError::kNone;
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR: return TransportError::kConnect;
  case CURLE_OPERATION_TIMEDOUT: return TransportError::kTimeout;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return TransportError::kResolve;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM: return TransportError::kTls;
  case CURLE_WRITE_ERROR:
  case CURLE_ABORTED_BY_CALLBACK: return TransportError::kAborted;
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_UNSUPPORTED_PROTOCOL: return TransportError::kProtocol;
  default: return TransportError::kOther;
  }
}

} // namespace

std::optional<std::string> HttpResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

const std::vector<std::string>& ca_bundle_candidates() {
  static const std::vector<std::string> candidates = {
      "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
      "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL family
      "/etc/ssl/cert.pem",                  // Alpine, macOS-style
  };
  return candidates;
}

std::string discover_ca_bundle() {
  std::error_code ec;
  for (const auto& candidate : ca_bundle_candidates())
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
  return {};
}

void HttpClient::global_init() { curl_global_init(CURL_GLOBAL_DEFAULT); }

// Not a CurlHandle: that type is file-local, and a member of a type with external linkage
// must not use one (gcc's -Wsubobject-linkage, an error in the unity builds).
struct HttpSession::Handle {
  Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
  CURL* curl = curl_easy_init();
};

HttpSession::HttpSession() : handle_(std::make_unique<Handle>()) {}
HttpSession::~HttpSession() = default;

HttpResponse HttpClient::send(const HttpRequest& request) const { return HttpSession().send(request); }

HttpResponse HttpSession::send(const HttpRequest& request) {
  HttpResponse response;
  if (!handle_->curl) {
    response.error = TransportError::kOther;
    response.error_message = "libcurl could not create a handle";
    return response;
  }
  CURL* h = handle_->curl;
  // Options from the last request go; the live connection and TLS session stay.
  curl_easy_reset(h);
  Transfer transfer{&request, &response, h};
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  // Proxies from the environment would send metadata and socket traffic elsewhere.
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.total_timeout.count()));
  if (request.low_speed_bytes > 0) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, request.low_speed_bytes);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.low_speed_window.count()));
  }
  curl_easy_setopt(h, CURLOPT_USERAGENT, "kasm-bootstrap");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  if (request.on_progress || request.abort) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
  }
  if (!request.unix_socket.empty()) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());

  const std::string ca = request.ca_bundle.empty() ? discover_ca_bundle() : request.ca_bundle;
  if (!ca.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  if (!request.verify_tls) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  // Outlives curl_easy_perform: libcurl keeps the pointer, not a copy.
  std::string range;
  if (request.range_last) {
    range = std::to_string(request.resume_from) + "-" + std::to_string(*request.range_last);
    curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
  } else if (request.resume_from > 0) {
    curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(request.resume_from));
  }

  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }

  CurlList headers;
  for (const auto& hdr : request.headers) {
    curl_slist* next = curl_slist_append(headers.get(), hdr.c_str());
    if (!next) break;
    (void)headers.release();
    headers.reset(next);
  }
  // Without this libcurl sends "Expect: 100-continue" on larger bodies and waits.
  if (!request.body.empty()) {
    curl_slist* next = curl_slist_append(headers.get(), "Expect:");
    if (next) {
      (void)headers.release();
      headers.reset(next);
    }
  }
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());

  const CURLcode code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  response.error = classify(code);
  if (code != CURLE_OK) {
    std::string why = error_buffer[0] ? error_buffer : curl_easy_strerror(code);
    if (transfer.over_limit) why = "response body larger than " + std::to_string(request.max_buffered_body) + " bytes";
    if (transfer.aborted_by_caller) why = "transfer stopped by the receiver";
    response.error_message = request.method + " " + request.url + ": " + why;
  }
  return response;
}

} // namespace kb::net
