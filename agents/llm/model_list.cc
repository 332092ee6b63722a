#include "agents/llm/model_list.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "nlohmann/json.hpp"

namespace agentd::llm {

using json = nlohmann::json;

HttpRequest ModelListRequest(const std::string& kind, const std::string& base_url,
                             const std::string& api_key) {
  HttpRequest r;
  r.get = true;
  if (kind == "ollama") {
    r.url = absl::StrCat(base_url.empty() ? "http://localhost:11434" : base_url, "/api/tags");
    if (!api_key.empty()) r.headers.push_back(absl::StrCat("Authorization: Bearer ", api_key));
  } else if (kind == "anthropic") {
    r.url = absl::StrCat(base_url.empty() ? "https://api.anthropic.com/v1" : base_url, "/models");
    r.headers.push_back("anthropic-version: 2023-06-01");
    if (!api_key.empty()) r.headers.push_back(absl::StrCat("x-api-key: ", api_key));
  } else {
    r.url = absl::StrCat(base_url, "/models");
    if (!api_key.empty()) r.headers.push_back(absl::StrCat("Authorization: Bearer ", api_key));
  }
  return r;
}

absl::StatusOr<std::vector<std::string>> ParseModelList(const std::string& kind,
                                                        absl::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  const char* list = kind == "ollama" ? "models" : "data";
  if (!j.is_object() || !j.contains(list) || !j[list].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("the answer is not a model listing (no \"", list,
                                                   "\" list): ", Utf8Prefix(body, 200, "…")));
  }
  std::vector<std::string> out;
  for (const json& m : j[list]) {
    if (!m.is_object()) continue;
    for (const char* key : {"id", "name", "model"}) {
      if (m.contains(key) && m[key].is_string()) {
        std::string name = ValidUtf8(m[key].get<std::string>());
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ListModels(Transport& transport, const std::string& kind,
                                                    const std::string& base_url,
                                                    const std::string& api_key,
                                                    absl::Duration timeout) {
  HttpRequest req = ModelListRequest(kind, base_url, api_key);
  req.timeouts.connect = std::min(timeout, absl::Seconds(5));
  req.timeouts.first_byte = req.timeouts.idle = req.timeouts.total = timeout;
  std::string body;
  absl::StatusOr<HttpResponse> r = transport.Post(
      req,
      [&body](std::string_view bytes) {
        if (body.size() > (size_t{8} << 20)) return false;  // no listing is this long
        body.append(bytes);
        return true;
      },
      nullptr);
  if (!r.ok()) return r.status();
  std::string excerpt = Utf8Prefix(r->body, 200, "…");
  if (r->status == 401) {
    return absl::UnauthenticatedError(absl::StrCat("HTTP 401 from ", req.url, ": ", excerpt));
  }
  if (r->status == 403) {
    return absl::PermissionDeniedError(absl::StrCat("HTTP 403 from ", req.url, ": ", excerpt));
  }
  if (r->status == 404) {
    return absl::NotFoundError(absl::StrCat("HTTP 404 from ", req.url));
  }
  if (r->status < 200 || r->status >= 300) {
    return absl::UnknownError(absl::StrCat("HTTP ", r->status, " from ", req.url, ": ", excerpt));
  }
  return ParseModelList(kind, body);
}

bool ServesModel(const std::vector<std::string>& served, const std::string& model) {
  for (const std::string& s : served) {
    if (s == model) return true;
    // Ollama: a name without a tag is the ":latest" one; its /v1/models lists the tag.
    if (!absl::StrContains(model, ':') && s == model + ":latest") return true;
  }
  return false;
}

}  // namespace agentd::llm
