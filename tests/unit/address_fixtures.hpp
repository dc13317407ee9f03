#pragma once
// Shared setup for the address detection suites: a temporary root with DMI files, a
// configuration pointing imds_endpoint at a loopback fake (never at 169.254.169.254), and
// the real Machine parts (RootFs, ProcessRunner, HttpClient).

#include "test_support.hpp"

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/net/address_chain.hpp"
#include "kasm_bootstrap/net/http_client.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/system/machine.hpp"

#include <functional>
#include <string>

namespace kb::test {

// Occurrences of `needle` in `text`: request counts from a fake server's log.
inline int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

// The message of the SourceError that f throws; fails the test when it throws none.
inline std::string source_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const net::SourceError& e) {
    return e.what();
  }
  FAIL("no SourceError was thrown");
  return {};
}

struct AddressWorld {
  TempDir root;
  sys::ProcessRunner processes;
  net::HttpClient http;
  Machine machine{sys::RootFs(root.path()), processes, http};
  config::Config config;

  AddressWorld() { config.imds_endpoint = "http://127.0.0.1:9"; } // discard port: never a real service

  void dmi(const std::string& sys_vendor) const { root.write("sys/class/dmi/id/sys_vendor", sys_vendor + "\n"); }
  void use(const FakeServer& server) { config.imds_endpoint = server.url(); }
  net::DetectedAddress detect() const { return net::detect_agent_address(config, machine); }
};

} // namespace kb::test
