#pragma once
// A value that must never be shown: the manager token, the nginx private key.
// Secret has no stream operator and serialises to "****", so printing one by accident
// shows the mask. Constructing a Secret registers its value with the process redactor,
// which scrubs every output channel (logs, stdout, status files) as a second line of
// defence for text that contains the value some other way (installer output, argv).

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace kb {

inline constexpr const char* kRedactedMask = "****";

class Secret {
public:
  Secret() = default;
  explicit Secret(std::string value);

  const std::string& reveal() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }
  bool operator==(const Secret&) const = default;

private:
  std::string value_;
};

void to_json(nlohmann::json& j, const Secret& secret);

} // namespace kb
