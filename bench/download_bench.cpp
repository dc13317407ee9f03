// Bench-only driver for the release downloader (bench/download.sh): one verified download,
// then one line of numbers. Not installed and not part of the product binary.

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: %s URL SHA256 TARGET CA_BUNDLE [CONNECTIONS]\n", argv[0]);
    return 2;
  }
  kb::net::HttpClient::global_init();
  kb::log::init(kb::log::Verbosity::kQuiet);
  kb::kasm::DownloadRequest req;
  req.url = argv[1];
  req.expected_sha256 = argv[2];
  req.target = argv[3];
  req.ca_bundle = argv[4];
  req.progress_interval = std::chrono::hours(1);
  req.connections = argc == 6 ? std::atoi(argv[5]) : 1;
  const auto start = std::chrono::steady_clock::now();
  try {
    const auto r = kb::kasm::download_verified(kb::net::HttpClient{}, req);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("bytes=%llu seconds=%.3f attempts=%d connections=%d sha256=%s\n",
                static_cast<unsigned long long>(r.size), s, r.attempts, r.connections, r.sha256.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "download failed: %s\n", e.what());
    return 1;
  }
}
