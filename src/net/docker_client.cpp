#include "kasm_bootstrap/net/docker_client.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <thread>

namespace kb::net {
namespace {

using nlohmann::json;

// Docker names and ids are [a-zA-Z0-9][a-zA-Z0-9_.-]*; checking keeps them safe to put
// in a URL path without escaping, and turns a typo into a clear message.
bool is_container_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > 128 || !std::isalnum(static_cast<unsigned char>(ref.front()))) return false;
  return std::all_of(ref.begin(), ref.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::string strip_slash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

// The engine's own explanation ({"message": "..."}), or the start of the body.
std::string daemon_message(const HttpResponse& r) {
  try {
    if (util::json_too_deep(r.body)) throw std::invalid_argument("nested too deep");
    const auto j = json::parse(r.body);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  } catch (const std::exception&) {
  }
  std::string text = r.body.substr(0, 200);
  std::replace_if(
      text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c >= 0x7f; }, '?');
  return text.empty() ? "empty reply" : text;
}

json parse_json(const std::string& what, const std::string& socket, const std::string& body) {
  if (util::json_too_deep(body))
    throw Error(ExitCode::kDocker, "Docker Engine at " + socket + " sent a reply to " + what + " nested deeper than " +
                                       std::to_string(util::kMaxJsonDepth) + " levels");
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    throw Error(ExitCode::kDocker, "Docker Engine at " + socket + " sent a reply to " + what + " that is not JSON (" +
                                       util::quote_for_message(e.what(), 200) + ")");
  }
}

template <typename T> T value_or(const json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

std::string one_line(std::string text, std::size_t max = 300) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (text.size() > max) text = text.substr(0, max) + "...";
  return text;
}

// Seconds from Docker's StartedAt ("2026-12-01T23:46:22.123456789Z", UTC) to now;
// nullopt when it does not parse (or is Docker's zero time).
std::optional<double> seconds_since(const std::string& stamp) {
  std::tm tm{};
  int fraction_start = 0;
  if (stamp.size() < 20 ||
      std::sscanf(stamp.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &fraction_start) != 6 ||
      tm.tm_year < 2000)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double started = static_cast<double>(::timegm(&tm));
  if (stamp[static_cast<std::size_t>(fraction_start)] == '.')
    started += std::strtod(stamp.c_str() + fraction_start, nullptr);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return now - started;
}

} // namespace

std::string ContainerState::describe() const {
  std::string s = status.empty() ? "unknown state" : status;
  if (!running && status == "exited") s += " (code " + std::to_string(exit_code) + ")";
  if (crash_looping())
    s += fmt::format(", restarted {} times and up only {:.1f} s (crash loop)", restart_count, *up_seconds);
  if (!error.empty()) s += ": " + one_line(error);
  if (!health.empty()) {
    s += ", " + health;
    if (health != "healthy" && !health_log.empty()) s += ": " + one_line(health_log, 160);
  }
  return s;
}

bool StreamDemuxer::feed(std::string_view bytes) {
  while (ok_ && !bytes.empty()) {
    if (remaining_ == 0) {
      const std::size_t take = std::min(bytes.size(), sizeof header_ - header_fill_);
      std::memcpy(header_ + header_fill_, bytes.data(), take);
      header_fill_ += take;
      bytes.remove_prefix(take);
      if (header_fill_ < sizeof header_) break;
      header_fill_ = 0;
      if (header_[0] > 2 || header_[1] != 0 || header_[2] != 0 || header_[3] != 0) {
        ok_ = false;
        break;
      }
      stream_ = header_[0];
      remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                   (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      continue;
    }
    const std::size_t take = std::min<std::size_t>(bytes.size(), remaining_);
    // Stream 0 (stdin echo) is never produced for exec; treat it as stdout like the CLI.
    keep(stream_ == 2 ? err_ : out_, bytes.substr(0, take));
    remaining_ -= static_cast<std::uint32_t>(take);
    bytes.remove_prefix(take);
  }
  return ok_;
}

void StreamDemuxer::keep(std::string& target, std::string_view data) {
  target.append(data);
  // Keep the tail: the end of a failing command's output says why it failed.
  if (target.size() > max_kept_) target.erase(0, target.size() - max_kept_);
}

DockerClient::DockerClient(const HttpClient& http, std::filesystem::path socket_host_path,
                           std::chrono::milliseconds request_timeout)
    : http_(http), socket_(std::move(socket_host_path)), timeout_(request_timeout) {}

HttpResponse DockerClient::call(const std::string& method, const std::string& path, const std::string& body,
                                std::chrono::milliseconds timeout) const {
  struct stat st {};
  if (::stat(socket_.c_str(), &st) != 0) {
    const int err = errno;
    throw Error(ExitCode::kDocker, "Docker Engine socket " + socket_.string() +
                                       (err == ENOENT ? " does not exist (is Docker installed and running?)"
                                                      : std::string(" is not accessible: ") + util::errno_text(err)));
  }
  if (!S_ISSOCK(st.st_mode))
    throw Error(ExitCode::kDocker, "Docker Engine socket " + socket_.string() + " is not a socket");

  HttpRequest request;
  request.method = method;
  // The host part is ignored over a unix socket; "docker" makes logs readable.
  request.url = "http://docker/" + std::string(kDockerApiVersion) + path;
  request.unix_socket = socket_.string();
  request.body = body;
  if (!body.empty()) request.headers.push_back("Content-Type: application/json");
  request.total_timeout = timeout;
  request.connect_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(5));
  return http_.send(request);
}

void DockerClient::fail(const std::string& what, const HttpResponse& r) const {
  if (!r.transport_ok()) {
    std::string why;
    switch (r.error) {
    case TransportError::kConnect: why = "nothing accepts connections on it (is dockerd running?)"; break;
    case TransportError::kTimeout: why = "no answer in time"; break;
    case TransportError::kProtocol: why = "the reply is not HTTP"; break;
    default: why = "transport error"; break;
    }
    throw Error(ExitCode::kDocker, "Docker Engine at " + socket_.string() + ": " + what + " failed: " + why + " (" +
                                       r.error_message + ")");
  }
  throw Error(ExitCode::kDocker, "Docker Engine at " + socket_.string() + ": " + what + " failed with HTTP " +
                                     std::to_string(r.status) + ": " + daemon_message(r));
}

std::optional<ContainerState> DockerClient::inspect_container(std::string_view name_or_id) const {
  if (!is_container_ref(name_or_id))
    throw Error(ExitCode::kDocker, "'" + std::string(name_or_id) + "' is not a Docker container name or id");
  const std::string what = "inspect container " + std::string(name_or_id);
  const auto r = call("GET", "/containers/" + std::string(name_or_id) + "/json", "", timeout_);
  if (r.transport_ok() && r.status == 404) return std::nullopt;
  if (!r.ok()) fail(what, r);
  const auto j = parse_json(what, socket_.string(), r.body);
  if (!j.is_object() || !j.contains("State") || !j["State"].is_object())
    throw Error(ExitCode::kDocker, "Docker Engine at " + socket_.string() +
                                       " sent an inspect reply without a State for " + std::string(name_or_id));
  const auto& st = j["State"];
  ContainerState c;
  c.id = value_or<std::string>(j, "Id", "");
  c.name = strip_slash(value_or<std::string>(j, "Name", ""));
  c.image = j.contains("Config") ? value_or<std::string>(j["Config"], "Image", "") : "";
  c.status = value_or<std::string>(st, "Status", "");
  c.running = value_or<bool>(st, "Running", false);
  c.restarting = value_or<bool>(st, "Restarting", false);
  c.exit_code = value_or<int>(st, "ExitCode", 0);
  c.error = value_or<std::string>(st, "Error", "");
  c.started_at = value_or<std::string>(st, "StartedAt", "");
  c.restart_count = value_or<int>(j, "RestartCount", 0);
  if (c.running) c.up_seconds = seconds_since(c.started_at);
  if (st.contains("Health") && st["Health"].is_object()) {
    const auto& h = st["Health"];
    c.health = value_or<std::string>(h, "Status", "");
    if (h.contains("Log") && h["Log"].is_array() && !h["Log"].empty())
      c.health_log = value_or<std::string>(h["Log"].back(), "Output", "");
  }
  if (j.contains("Mounts") && j["Mounts"].is_array())
    for (const auto& m : j["Mounts"])
      c.mounts.push_back({value_or<std::string>(m, "Type", ""), value_or<std::string>(m, "Source", ""),
                          value_or<std::string>(m, "Destination", "")});
  return c;
}

void DockerClient::restart_container(std::string_view name, std::chrono::seconds stop_timeout) const {
  if (!is_container_ref(name))
    throw Error(ExitCode::kDocker, "'" + std::string(name) + "' is not a Docker container name or id");
  const auto r = call("POST", "/containers/" + std::string(name) + "/restart?t=" + std::to_string(stop_timeout.count()),
                      "", timeout_ + stop_timeout);
  if (r.transport_ok() && r.status == 404)
    throw Error(ExitCode::kDocker, "cannot restart container " + std::string(name) + ": no such container");
  if (!r.ok()) fail("restart container " + std::string(name), r);
}

bool DockerClient::start_container(std::string_view name) const {
  if (!is_container_ref(name))
    throw Error(ExitCode::kDocker, "'" + std::string(name) + "' is not a Docker container name or id");
  const auto r = call("POST", "/containers/" + std::string(name) + "/start", "", timeout_);
  if (r.transport_ok() && r.status == 304) return false;
  if (r.transport_ok() && r.status == 404)
    throw Error(ExitCode::kDocker, "cannot start container " + std::string(name) +
                                       ": no such container (Docker Engine at " + socket_.string() + ")");
  if (!r.ok()) fail("start container " + std::string(name), r);
  return true;
}

bool DockerClient::ping(std::chrono::milliseconds timeout) const {
  struct stat st {};
  if (::stat(socket_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  const auto r = call("GET", "/_ping", "", timeout);
  return r.ok() && r.body.rfind("OK", 0) == 0;
}

std::vector<ContainerSummary> DockerClient::list_containers(bool include_stopped) const {
  const std::string what = "list containers";
  const auto r = call("GET", include_stopped ? "/containers/json?all=1" : "/containers/json", "", timeout_);
  if (!r.ok()) fail(what, r);
  const auto j = parse_json(what, socket_.string(), r.body);
  if (!j.is_array())
    throw Error(ExitCode::kDocker,
                "Docker Engine at " + socket_.string() + " sent a container list that is not a list");
  std::vector<ContainerSummary> out;
  for (const auto& item : j) {
    ContainerSummary s;
    s.id = value_or<std::string>(item, "Id", "");
    for (const auto& n : value_or<std::vector<std::string>>(item, "Names", {}))
      s.names.push_back(strip_slash(n));
    s.image = value_or<std::string>(item, "Image", "");
    s.state = value_or<std::string>(item, "State", "");
    s.status = value_or<std::string>(item, "Status", "");
    out.push_back(std::move(s));
  }
  return out;
}

ExecResult DockerClient::exec(std::string_view container, const std::vector<std::string>& argv,
                              std::chrono::milliseconds timeout) const {
  if (!is_container_ref(container))
    throw Error(ExitCode::kDocker, "'" + std::string(container) + "' is not a Docker container name or id");
  if (argv.empty()) throw Error(ExitCode::kInternal, "docker exec needs a command");
  std::string command_line;
  for (const auto& a : argv)
    command_line += (command_line.empty() ? "" : " ") + a;
  const std::string where = "'" + command_line + "' in container " + std::string(container);

  const json create_body{
      {"AttachStdin", false}, {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}, {"Cmd", argv}};
  const auto created = call("POST", "/containers/" + std::string(container) + "/exec", create_body.dump(), timeout_);
  if (created.transport_ok() && created.status == 404)
    throw Error(ExitCode::kDocker,
                "cannot run " + where + ": no such container (Docker Engine at " + socket_.string() + ")");
  if (created.transport_ok() && created.status == 409)
    throw Error(ExitCode::kDocker,
                "cannot run " + where + ": the container is not running (" + daemon_message(created) + ")");
  if (!created.ok()) fail("create exec for " + where, created);
  const auto id = value_or<std::string>(parse_json("exec create", socket_.string(), created.body), "Id", "");
  if (!is_container_ref(id))
    throw Error(ExitCode::kDocker, "Docker Engine at " + socket_.string() + " returned no exec id for " + where);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  StreamDemuxer demux;
  HttpRequest start;
  start.method = "POST";
  start.url = "http://docker/" + std::string(kDockerApiVersion) + "/exec/" + id + "/start";
  start.unix_socket = socket_.string();
  start.body = json{{"Detach", false}, {"Tty", false}}.dump();
  start.headers.push_back("Content-Type: application/json");
  start.total_timeout = timeout;
  start.connect_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(5));
  start.on_body = [&demux](std::string_view chunk) { return demux.feed(chunk); };
  const auto started = http_.send(start);
  if (!demux.ok())
    throw Error(ExitCode::kDocker, "Docker Engine at " + socket_.string() + " sent output for " + where +
                                       " that is not a multiplexed raw stream");
  if (started.transport_ok() && started.status == 409)
    throw Error(ExitCode::kDocker, "cannot run " + where + ": " + daemon_message(started));
  if (!started.ok()) fail("start exec " + where, started);

  // The stream can end a moment before the engine records the exit code.
  for (;;) {
    const auto inspected = call("GET", "/exec/" + id + "/json", "", timeout_);
    if (!inspected.ok()) fail("inspect exec of " + where, inspected);
    const auto j = parse_json("exec inspect", socket_.string(), inspected.body);
    if (!value_or<bool>(j, "Running", false)) {
      ExecResult result;
      result.exit_code = value_or<int>(j, "ExitCode", -1);
      result.stdout_text = demux.out();
      result.stderr_text = demux.err();
      return result;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(ExitCode::kDocker,
                  where + " was still running after " + std::to_string(timeout.count() / 1000) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

} // namespace kb::net
