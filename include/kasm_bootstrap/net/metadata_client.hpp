#pragma once
// Requests to a cloud metadata service: short timeouts, a few retries with backoff and
// jitter, all inside one time budget shared by the whole address chain. At boot the
// service can lag the network, and on the wrong cloud it is not there at all, so every
// wait is bounded in milliseconds, never in minutes.

#include "kasm_bootstrap/net/http_client.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace kb::net {

// The time left for address detection, and the operator's request to stop.
class Budget {
public:
  explicit Budget(std::chrono::milliseconds total, const std::atomic<bool>* cancel = nullptr);
  std::chrono::milliseconds total() const { return total_; }
  std::chrono::milliseconds remaining() const;
  bool exhausted() const { return remaining().count() <= 0; }
  bool cancelled() const { return cancel_ && cancel_->load(); }
  // Sleeps for `d` or until the budget ends or a cancel arrives; false when cut short.
  bool sleep_for(std::chrono::milliseconds d) const;

private:
  std::chrono::milliseconds total_;
  std::chrono::steady_clock::time_point end_;
  const std::atomic<bool>* cancel_;
};

struct MetadataPolicy {
  // AWS's default hop limit of 1 means a reply may simply never arrive (docs/platform.md,
  // "IMDSv2 and the hop limit").
  std::chrono::milliseconds connect_timeout{250};
  std::chrono::milliseconds response_timeout{1000};
  int max_attempts = 3;
  std::chrono::milliseconds first_backoff{100};  // doubled after every retry, with jitter
  std::chrono::milliseconds max_backoff{1000};   // also caps a server's Retry-After
  std::size_t max_body = std::size_t{64} * 1024; // a metadata item is a few bytes
};

struct MetadataReply {
  enum class Kind {
    kOk,           // 2xx
    kAbsent,       // 404: the item does not exist here
    kUnauthorized, // 401
    kForbidden,    // 403
    kRejected,     // another 4xx; not worth a retry
    kFailed,       // no usable answer after every attempt: transport errors, 5xx, throttling, budget
  };
  Kind kind = Kind::kFailed;
  HttpResponse response;       // the last attempt's
  std::string problem;         // kRejected/kFailed: what went wrong, with the URL
  bool never_answered = false; // every attempt ended in a timeout without any HTTP reply
  int attempts = 0;

  bool ok() const { return kind == Kind::kOk; }
  const std::string& body() const { return response.body; }
};

class MetadataClient {
public:
  // `base_url` like "http://169.254.169.254" (a trailing '/' is ignored).
  MetadataClient(const HttpClient& http, std::string base_url, const Budget& budget, MetadataPolicy policy = {});

  // `path` starts with '/'. Retries transport errors, 429 and 5xx; everything else is
  // returned as it came.
  MetadataReply request(const std::string& method, const std::string& path,
                        const std::vector<std::string>& headers) const;
  const std::string& base_url() const { return base_url_; }
  const Budget& budget() const { return budget_; }

private:
  const HttpClient& http_;
  std::string base_url_;
  const Budget& budget_;
  MetadataPolicy policy_;
};

} // namespace kb::net
