#pragma once
// The side-effect boundary: everything a step may touch on the machine. Steps receive
// it; nothing reaches files, processes or the network any other way. Tests build one
// over a temporary root and loopback endpoints.

#include "kasm_bootstrap/net/http_client.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

namespace kb {

struct Machine {
  sys::RootFs fs;
  sys::ProcessRunner& processes;
  const net::HttpClient& http;
};

} // namespace kb
