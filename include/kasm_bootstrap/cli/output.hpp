#pragma once
// Everything printed on stdout goes through here, and through the redactor. With
// --output json every command prints exactly one JSON document.

#include <nlohmann/json.hpp>
#include <ostream>
#include <string_view>

namespace kb::cli {

enum class Format { kText, kJson };

class Output {
public:
  Output(Format format, std::ostream& out) : format_(format), out_(out) {}
  Format format() const { return format_; }
  bool json() const { return format_ == Format::kJson; }
  void line(std::string_view text);         // text mode only
  void document(const nlohmann::json& doc); // json mode only

private:
  Format format_;
  std::ostream& out_;
};

} // namespace kb::cli
