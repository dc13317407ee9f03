#pragma once
// Docker Engine API over its unix socket, through the one HttpClient: enough to see
// whether Kasm's containers run and to run a command in one (nginx reload) without a
// docker CLI on the machine. Pinned to API 1.41, the newest that Debian/Ubuntu's
// Engine 20.10 accepts (a newer path gets HTTP 400); later engines still serve it.
//
// Every failure (socket missing, daemon error, unparseable reply) is a
// kb::Error(ExitCode::kDocker) whose message names the socket and the request.

#include "kasm_bootstrap/net/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::net {

inline constexpr std::string_view kDockerApiVersion = "v1.41";

struct ContainerMount {
  std::string type;        // bind | volume | tmpfs
  std::string source;      // host path (bind) or volume path
  std::string destination; // path inside the container
};

struct ContainerState {
  std::string id;
  std::string name; // without Docker's leading '/'
  std::string image;
  std::string status; // created | running | paused | restarting | removing | exited | dead
  bool running = false;
  bool restarting = false;
  int exit_code = 0;
  std::string error;      // the engine's State.Error, when it could not start the container
  std::string health;     // empty = no health check; starting | healthy | unhealthy
  std::string health_log; // output of the last health probe, when there is one
  std::string started_at;
  int restart_count = 0;            // restarts by the restart policy; a start by the API resets it (docs/platform.md)
  std::optional<double> up_seconds; // since StartedAt, while running
  std::vector<ContainerMount> mounts;

  // Restarted by its policy and up only moments: Kasm's containers have `restart: always`
  // (docs/kasm-installer.md), so one that keeps exiting is seen "running" now and then.
  bool crash_looping() const { return running && restart_count > 0 && up_seconds && *up_seconds < kSettledSeconds; }
  // Running (and not crash-looping), and healthy when the image defines a health check.
  bool usable() const { return running && !restarting && !crash_looping() && (health.empty() || health == "healthy"); }
  static constexpr double kSettledSeconds = 10.0;
  // "running, healthy", "exited (code 1)", "running, unhealthy: <probe output>"
  std::string describe() const;
};

struct ContainerSummary {
  std::string id;
  std::vector<std::string> names; // without the leading '/'
  std::string image;
  std::string state;  // running | exited | ...
  std::string status; // "Up 2 minutes (healthy)"
};

struct ExecResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
  bool success() const { return exit_code == 0; }
};

// Splits Docker's multiplexed raw stream (exec and attach without a TTY): frames of an
// 8-byte header {stream, 0, 0, 0, size as big-endian uint32} and `size` payload bytes;
// stream 1 is stdout, 2 is stderr. Fed in arbitrary chunks, as the bytes arrive.
class StreamDemuxer {
public:
  explicit StreamDemuxer(std::size_t max_kept_per_stream = std::size_t{64} * 1024) : max_kept_(max_kept_per_stream) {}
  // False once the bytes cannot be a raw stream (bad header); everything after is ignored.
  bool feed(std::string_view bytes);
  // True when the input ended on a frame boundary.
  bool complete() const { return ok_ && header_fill_ == 0 && remaining_ == 0; }
  bool ok() const { return ok_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

private:
  void keep(std::string& target, std::string_view data);

  std::size_t max_kept_;
  bool ok_ = true;
  unsigned char header_[8] = {};
  std::size_t header_fill_ = 0;
  std::uint32_t remaining_ = 0;
  int stream_ = 0;
  std::string out_;
  std::string err_;
};

class DockerClient {
public:
  // `socket_host_path` is a real host path (RootFs::host_path of the docker_socket key).
  DockerClient(const HttpClient& http, std::filesystem::path socket_host_path,
               std::chrono::milliseconds request_timeout = std::chrono::seconds(10));

  // nullopt when no container has that name or id.
  std::optional<ContainerState> inspect_container(std::string_view name_or_id) const;
  std::vector<ContainerSummary> list_containers(bool include_stopped = true) const;
  // Runs argv in a running container and waits for it to finish (up to `timeout`).
  // A command that runs and fails is an ExecResult with its exit code and output, not
  // an error; a missing or stopped container is a kb::Error.
  ExecResult exec(std::string_view container, const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // Stops and starts the container again (POST /containers/{name}/restart).
  void restart_container(std::string_view name, std::chrono::seconds stop_timeout = std::chrono::seconds(10)) const;

  // Starts a created or stopped container (POST /containers/{name}/start). True when it
  // was started, false when it was already running (HTTP 304); a missing container is a
  // kb::Error that says so.
  bool start_container(std::string_view name) const;

  // True when the engine answers GET /_ping with OK; false (never an error) while the
  // socket is missing or nothing answers yet, so callers can wait for a starting daemon.
  bool ping(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

  const std::filesystem::path& socket() const { return socket_; }

private:
  HttpResponse call(const std::string& method, const std::string& path, const std::string& body,
                    std::chrono::milliseconds timeout) const;
  [[noreturn]] void fail(const std::string& what, const HttpResponse& response) const;

  const HttpClient& http_;
  std::filesystem::path socket_;
  std::chrono::milliseconds timeout_;
};

} // namespace kb::net
