// ListModels: which models a provider serves, asked the way its API lists them, so that
// `agentctl doctor` can say "model gpt-oss:20b is not pulled" before a goal finds out.
//
//   openai    GET {base_url}/models      {"data": [{"id": "…"}, …]}  (OpenAI, Ollama's /v1,
//                                          LM Studio, vLLM, llama.cpp)
//   ollama    GET {base_url}/api/tags    {"models": [{"name": "…", "model": "…"}, …]}
//   anthropic GET {base_url}/models      {"data": [{"id": "…"}, …]}  (base_url ends in /v1)
//
// Thread-safety: pure functions over the given transport.
#ifndef AGENTD_AGENTS_LLM_MODEL_LIST_H_
#define AGENTD_AGENTS_LLM_MODEL_LIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agents/llm/http.h"

namespace agentd::llm {

// The URL and headers that list `kind`'s models at `base_url` (empty: the kind's default).
HttpRequest ModelListRequest(const std::string& kind, const std::string& base_url,
                             const std::string& api_key);

// The model names in a listing's body. InvalidArgument when it is not such a listing.
absl::StatusOr<std::vector<std::string>> ParseModelList(const std::string& kind,
                                                        absl::string_view body);

// Asks the provider. Errors: the transport's (UNAVAILABLE: not reachable, …);
// UNAUTHENTICATED or PERMISSION_DENIED for HTTP 401/403 (a wrong or missing key);
// NOT_FOUND for 404 (the server has no such listing: base_url wrong, or a server that
// does not list models); UNKNOWN for another HTTP error, with its status and body excerpt.
absl::StatusOr<std::vector<std::string>> ListModels(Transport& transport, const std::string& kind,
                                                    const std::string& base_url,
                                                    const std::string& api_key,
                                                    absl::Duration timeout);

// Whether `model` is among `served`, as the provider would resolve it: Ollama takes
// "llama3" for "llama3:latest".
bool ServesModel(const std::vector<std::string>& served, const std::string& model);

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_MODEL_LIST_H_
