#pragma once
// Fixtures for the release and installer tests: a throw-away CA and a loopback server
// certificate made with the openssl CLI, fake release tarballs (tests/fakes/make_release.py)
// and the HTTPS release server (tests/fakes/release_server.py).

#include "test_support.hpp"

#include "kasm_bootstrap/util/log.hpp"

#include <memory>
#include <string>
#include <vector>

namespace kb::test {

// A CA and a server certificate for 127.0.0.1 and localhost, made fresh per use.
struct TestCa {
  TempDir dir;
  std::filesystem::path ca_cert = dir.path() / "ca.crt";
  std::filesystem::path server_cert = dir.path() / "server.crt";
  std::filesystem::path server_key = dir.path() / "server.key";

  TestCa() {
    const auto d = dir.path().string();
    must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
              "2", "-subj", "/CN=kb-test-ca", "-keyout", d + "/ca.key", "-out", ca_cert.string()});
    must_run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
              "/CN=127.0.0.1", "-keyout", server_key.string(), "-out", d + "/server.csr"});
    dir.write("san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    must_run({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", ca_cert.string(), "-CAkey", d + "/ca.key",
              "-CAcreateserial", "-days", "2", "-extfile", d + "/san.ext", "-out", server_cert.string()});
  }
};

// Builds a fake release; returns its SHA-256.
inline std::string make_release(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{"python3", (source_dir() / "tests/fakes/make_release.py").string(), "--out",
                                out.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = run_process(argv);
  if (r.exit_code != 0) throw std::runtime_error("make_release.py failed: " + r.err);
  return r.out.substr(0, 64);
}

// The release server over HTTPS with the CA's certificate.
struct ReleaseServer {
  std::unique_ptr<FakeServer> server;
  ReleaseServer(const TestCa& ca, const std::filesystem::path& file, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--file", file.string(),         "--cert", ca.server_cert.string(),
                                  "--key",  ca.server_key.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    server = std::make_unique<FakeServer>("release_server.py", args);
  }
  std::string url(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(server->port()) + "/kasm_release_1.15.0.tar.gz";
  }
  std::string log() const { return server->log(); }
  // Request log lines for GETs, in order.
  std::vector<std::string> gets() const {
    std::vector<std::string> lines;
    const auto text = log();
    std::size_t pos = 0;
    while (pos < text.size()) {
      auto end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      auto line = text.substr(pos, end - pos);
      if (line.rfind("GET ", 0) == 0) lines.push_back(line);
      pos = end + 1;
    }
    return lines;
  }
};

} // namespace kb::test

namespace kb::test {

// Collects what the logger says while it lives.
using LogCapture = kb::log::Capture;

} // namespace kb::test
