#include "kasm_bootstrap/cli/output.hpp"

#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/version.hpp"

namespace kb::cli {

void Output::line(std::string_view text) {
  if (format_ == Format::kText) out_ << scrub(text) << '\n' << std::flush;
}

void Output::document(const nlohmann::json& doc) {
  if (format_ != Format::kJson) return;
  if (doc.is_object() && !doc.contains("schema_version")) {
    nlohmann::json versioned = doc;
    versioned["schema_version"] = kSchemaVersion;
    out_ << scrub(util::dump_json(versioned, 2)) << '\n' << std::flush;
    return;
  }
  out_ << scrub(util::dump_json(doc, 2)) << '\n' << std::flush;
}

} // namespace kb::cli
