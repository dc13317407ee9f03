#pragma once
// The one HTTP client (libcurl). Metadata services, the release download, the Docker
// Engine API (over a unix socket) and the manager health check all go through send().
// A transport failure is returned, not thrown, so callers can retry or explain it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::net {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers; // "Name: value"
  std::string body;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds total_timeout{5000}; // 0 = no overall limit (use low_speed_* then)
  // Abort when slower than low_speed_bytes per second for low_speed_window.
  long low_speed_bytes = 0;
  std::chrono::seconds low_speed_window{0};
  std::string unix_socket; // host path; speak HTTP over this socket instead of TCP
  std::string ca_bundle;   // host path; empty = first of the well-known bundles
  bool verify_tls = true;
  std::uint64_t resume_from = 0; // send "Range: bytes=N-"
  // With resume_from: ask for bytes resume_from..range_last (inclusive, as RFC 9110's
  // byte ranges are): "Range: bytes=N-M".
  std::optional<std::uint64_t> range_last;
  // Streaming: called with each body chunk instead of buffering; return false to abort.
  std::function<bool(std::string_view chunk)> on_body;
  // Streaming: called once with the final status code (after redirects) before the first
  // body chunk, so a receiver can refuse an error page or an ignored Range instead of
  // writing it into a download; return false to abort.
  std::function<bool(long status)> on_status;
  // Called once before the first body chunk when the length is known, then about every
  // 100 ms while bytes flow: (received now, expected total or 0).
  std::function<void(std::uint64_t received, std::uint64_t total)> on_progress;
  std::size_t max_buffered_body = 1u << 20; // larger bodies fail instead of eating memory
  // Checked about every 100 ms even while no byte arrives: true ends the transfer
  // (kAborted), so a stalled connection cannot hold up a cancelled or failed download.
  const std::atomic<bool>* abort = nullptr;
};

enum class TransportError {
  kNone,
  kConnect,  // refused, unreachable, no route
  kTimeout,  // connect or overall deadline, or too slow
  kTls,      // certificate or handshake problem
  kResolve,  // name did not resolve
  kAborted,  // on_body returned false, or the body was over max_buffered_body
  kProtocol, // garbage instead of HTTP, connection dropped mid-body
  kOther,
};

struct HttpResponse {
  TransportError error = TransportError::kNone;
  std::string error_message; // libcurl's explanation, with the URL
  long status = 0;
  std::string body;                                         // empty when on_body streamed it
  std::vector<std::pair<std::string, std::string>> headers; // names lower-cased
  std::uint64_t bytes_received = 0;

  bool transport_ok() const { return error == TransportError::kNone; }
  bool ok() const { return transport_ok() && status >= 200 && status < 300; }
  std::optional<std::string> header(std::string_view lower_name) const;
};

// The well-known CA bundle locations (machine paths), most likely first.
const std::vector<std::string>& ca_bundle_candidates();
// First existing bundle of ca_bundle_candidates() on this host, or empty. Never
// OpenSSL's compiled-in default, which a static build would take from its build machine.
// Under a --root, steps choose among the candidates through RootFs instead.
std::string discover_ca_bundle();

// Requests that reuse one connection (HTTP keep-alive, and the TLS session): the ranged
// download sends many requests per connection. Not thread-safe: one per thread.
class HttpSession {
public:
  HttpSession();
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;
  HttpResponse send(const HttpRequest& request);

private:
  struct Handle;
  std::unique_ptr<Handle> handle_;
};

class HttpClient {
public:
  // Call once from main() before threads start (libcurl's global init is not thread-safe).
  static void global_init();

  // Thread-safe: every call uses its own handle (a session of one request).
  HttpResponse send(const HttpRequest& request) const;
};

} // namespace kb::net
