#include "agents/runtime/prompt.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace agentd::agent {

std::string RenderTemplate(absl::string_view text, const std::map<std::string, std::string>& vars,
                           std::vector<std::string>* unknown) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    if (open == absl::string_view::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) break;
    absl::string_view name = absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2));
    bool word = !name.empty();
    for (char c : name) word = word && (absl::ascii_isalnum(c) || c == '_');
    absl::StrAppend(&out, text.substr(i, open - i));
    auto it = word ? vars.find(std::string(name)) : vars.end();
    if (it != vars.end()) {
      out.append(it->second);
    } else {
      if (word && unknown != nullptr) unknown->emplace_back(name);
      absl::StrAppend(&out, text.substr(open, close + 2 - open));
    }
    i = close + 2;
  }
  absl::StrAppend(&out, text.substr(i));
  return out;
}

}  // namespace agentd::agent
