#include "kasm_bootstrap/net/metadata_client.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

namespace kb::net {
namespace {

using std::chrono::milliseconds;

// Half fixed, half random: many instances booting together must not retry in lockstep.
milliseconds with_jitter(milliseconds d) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<long> extra(0, std::max<long>(1, static_cast<long>(d.count()) / 2));
  return milliseconds(d.count() / 2 + extra(rng));
}

// Retry-After in seconds; the HTTP-date form is not worth parsing for a metadata service.
std::optional<milliseconds> retry_after(const HttpResponse& r) {
  const auto value = r.header("retry-after");
  if (!value || value->empty() || value->size() > 6) return std::nullopt;
  if (!std::all_of(value->begin(), value->end(), [](unsigned char c) { return std::isdigit(c); })) return std::nullopt;
  return milliseconds(std::stol(*value) * 1000);
}

bool worth_retrying(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::string seconds_text(milliseconds d) { return fmt::format("{:.3g} s", static_cast<double>(d.count()) / 1000.0); }

} // namespace

Budget::Budget(milliseconds total, const std::atomic<bool>* cancel)
    : total_(total), end_(std::chrono::steady_clock::now() + total), cancel_(cancel) {}

milliseconds Budget::remaining() const {
  return std::chrono::duration_cast<milliseconds>(end_ - std::chrono::steady_clock::now());
}

bool Budget::sleep_for(milliseconds d) const {
  const auto until = std::chrono::steady_clock::now() + d;
  while (true) {
    if (cancelled()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    if (now >= end_) return false;
    std::this_thread::sleep_for(std::min({milliseconds(50), std::chrono::duration_cast<milliseconds>(until - now),
                                          std::chrono::duration_cast<milliseconds>(end_ - now) + milliseconds(1)}));
  }
}

MetadataClient::MetadataClient(const HttpClient& http, std::string base_url, const Budget& budget,
                               MetadataPolicy policy)
    : http_(http), base_url_(std::move(base_url)), budget_(budget), policy_(policy) {
  while (!base_url_.empty() && base_url_.back() == '/')
    base_url_.pop_back();
}

MetadataReply MetadataClient::request(const std::string& method, const std::string& path,
                                      const std::vector<std::string>& headers) const {
  using Kind = MetadataReply::Kind;
  MetadataReply reply;
  const std::string url = base_url_ + path;
  const std::string what = method + " " + url;
  milliseconds backoff = policy_.first_backoff;
  bool only_timeouts = true;
  std::string stop_reason;

  for (int attempt = 1; attempt <= policy_.max_attempts; ++attempt) {
    if (budget_.cancelled()) {
      stop_reason = "interrupted";
      break;
    }
    const auto left = budget_.remaining();
    if (left < milliseconds(20)) {
      stop_reason = "the address detection time budget (" + seconds_text(budget_.total()) + ") is used up";
      break;
    }
    HttpRequest request;
    request.method = method;
    request.url = url;
    request.headers = headers;
    request.connect_timeout = std::min(policy_.connect_timeout, left);
    request.total_timeout = std::min(policy_.response_timeout, left);
    request.max_buffered_body = policy_.max_body;
    reply.response = http_.send(request);
    reply.attempts = attempt;
    milliseconds wait = with_jitter(backoff);

    const auto& r = reply.response;
    if (!r.transport_ok()) {
      if (r.error != TransportError::kTimeout) only_timeouts = false;
      reply.problem = r.error_message;
      // A bad certificate or an oversized answer will be the same on the next try.
      if (r.error == TransportError::kTls || r.error == TransportError::kAborted) break;
    } else {
      only_timeouts = false;
      if (r.status >= 200 && r.status < 300) {
        reply.kind = Kind::kOk;
        reply.problem.clear();
        return reply;
      }
      if (r.status == 404 || r.status == 401 || r.status == 403) {
        reply.kind = r.status == 404 ? Kind::kAbsent : r.status == 401 ? Kind::kUnauthorized : Kind::kForbidden;
        reply.problem = what + ": HTTP " + std::to_string(r.status);
        return reply;
      }
      reply.problem = what + ": HTTP " + std::to_string(r.status);
      if (!r.body.empty()) reply.problem += " '" + util::quote_for_message(r.body) + "'";
      if (!worth_retrying(r.status)) {
        reply.kind = Kind::kRejected;
        return reply;
      }
      if (r.status == 429 || r.status == 503) reply.problem += " (throttled or busy)";
      if (auto asked = retry_after(r)) wait = std::min(std::max(*asked, wait), policy_.max_backoff);
    }
    if (attempt == policy_.max_attempts) break;
    log::debug("{}: try {} of {} failed ({}); retrying in {} ms", what, attempt, policy_.max_attempts, reply.problem,
               wait.count());
    if (!budget_.sleep_for(wait)) {
      stop_reason = budget_.cancelled()
                        ? "interrupted"
                        : "the address detection time budget (" + seconds_text(budget_.total()) + ") is used up";
      break;
    }
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }

  reply.kind = Kind::kFailed;
  reply.never_answered = only_timeouts && reply.attempts > 0;
  std::string problem = reply.problem.empty() ? what : reply.problem;
  problem += " (" + std::to_string(reply.attempts) + (reply.attempts == 1 ? " try" : " tries");
  if (!stop_reason.empty()) problem += "; then stopped: " + stop_reason;
  problem += ")";
  reply.problem = std::move(problem);
  return reply;
}

} // namespace kb::net
