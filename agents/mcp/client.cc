#include "agents/mcp/client.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace agentd::mcp {

using nlohmann::json;

namespace {

// Older revisions whose tools agentd uses the same way (their differences lie in what
// agentd does not use: batching, elicitation, tasks).
const std::set<std::string>& LegacyRevisions() {
  static const auto* revisions =
      new std::set<std::string>{kLegacyRevision, "2025-06-18", "2025-03-26"};
  return *revisions;
}

// The new revision's errors that say "a modern server, another version" (-32022,
// UnsupportedProtocolVersion) rather than "an older server".
constexpr int64_t kUnsupportedProtocolVersion = -32022;

constexpr size_t kMaxTools = 1000;
constexpr int kMaxPages = 100;

json ClientInfo() { return {{"name", "agentd-agent"}, {"version", kVersion}}; }

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool Flag(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

}  // namespace

McpClient::McpClient(std::string name, std::unique_ptr<Connection> connection, int64_t generation)
    : name_(std::move(name)),
      connection_(std::move(connection)),
      tools_changed_(std::make_shared<std::atomic<bool>>(false)),
      generation_(generation) {}

McpClient::~McpClient() { connection_->Close(); }

NotificationHandler McpClient::ChangeHandler(std::shared_ptr<std::atomic<bool>> flag,
                                             std::string server) {
  return
      [flag = std::move(flag), server = std::move(server)](const std::string& method, const json&) {
        if (method == "notifications/tools/list_changed") {
          flag->store(true);
          spdlog::info("MCP server {}: its tools changed", server);
        }
      };
}

json McpClient::WithMeta(json params) const {
  if (era_ != Era::kModern) return params;
  if (!params.is_object()) params = json::object();
  json& meta = params["_meta"];
  if (!meta.is_object()) meta = json::object();
  meta["io.modelcontextprotocol/protocolVersion"] = revision_;
  meta["io.modelcontextprotocol/clientCapabilities"] = json::object();
  meta["io.modelcontextprotocol/clientInfo"] = ClientInfo();
  return params;
}

absl::Status McpClient::Open(const OpenOptions& options, bool* died_on_probe,
                             const llm::CancelToken* cancel) {
  absl::Time deadline = absl::Now() + options.timeout;
  if (options.probe) {
    era_ = Era::kModern;
    revision_ = kModernRevision;
    absl::StatusOr<json> r =
        connection_->Request("server/discover", WithMeta(json::object()),
                             std::min(options.probe_timeout, options.timeout), cancel);
    if (r.ok() && r->is_object()) {
      const json& versions = r->value("supportedVersions", json::array());
      if (versions.is_array() &&
          std::find(versions.begin(), versions.end(), json(kModernRevision)) != versions.end()) {
        spdlog::info("MCP server {}: revision {} (stateless)", name_, revision_);
        return absl::OkStatus();
      }
      // A modern server of another revision only.
      era_ = Era::kLegacy;
      return absl::FailedPreconditionError(absl::StrCat(
          "MCP server ", name_, " speaks revisions ", Utf8Prefix(DumpJson(versions), 200, "…"),
          "; agentd speaks ", kModernRevision, " and ", kLegacyRevision));
    }
    if (!r.ok() && r.status().code() == absl::StatusCode::kCancelled) return r.status();
    if (!r.ok() && RpcErrorCode(r.status()) == kUnsupportedProtocolVersion) {
      era_ = Era::kLegacy;
      return absl::FailedPreconditionError(
          absl::StrCat("MCP server ", name_, " does not speak revision ", kModernRevision, ": ",
                       r.status().message()));
    }
    era_ = Era::kLegacy;
    revision_.clear();
    if (!connection_->alive()) {
      // Some older servers end on any request before initialize.
      if (died_on_probe != nullptr) *died_on_probe = true;
      return absl::UnavailableError(absl::StrCat("MCP server ", name_,
                                                 " ended when asked server/discover (an older "
                                                 "server): ",
                                                 connection_->why()));
    }
  }
  era_ = Era::kLegacy;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) left = absl::Seconds(1);
  absl::StatusOr<json> r = connection_->Request("initialize",
                                                {{"protocolVersion", kLegacyRevision},
                                                 {"capabilities", json::object()},
                                                 {"clientInfo", ClientInfo()}},
                                                left, cancel);
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("MCP server ", name_, ": initialize: ", r.status().message()));
  }
  std::string version = r->is_object() ? Str(*r, "protocolVersion") : "";
  if (LegacyRevisions().count(version) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "MCP server ", name_, " speaks revision \"", Utf8Prefix(version, 40, "…"),
        "\"; agentd speaks ", kModernRevision, ", ", absl::StrJoin(LegacyRevisions(), ", ")));
  }
  revision_ = version;
  connection_->set_protocol_version(version);
  if (absl::Status s = connection_->Notify("notifications/initialized", nullptr); !s.ok()) return s;
  spdlog::info("MCP server {}: revision {}", name_, revision_);
  return absl::OkStatus();
}

namespace internal {

absl::Status ParseToolsPage(const json& result, std::vector<ToolInfo>* tools,
                            std::vector<std::string>* skipped, std::string* next_cursor) {
  next_cursor->clear();
  if (!result.is_object()) return absl::DataLossError("tools/list: the result is not an object");
  auto list = result.find("tools");
  if (list == result.end() || !list->is_array()) {
    return absl::DataLossError("tools/list: the result has no \"tools\" list");
  }
  for (const json& t : *list) {
    if (!t.is_object()) {
      skipped->push_back("an entry that is not an object");
      continue;
    }
    ToolInfo info;
    info.name = Str(t, "name");
    // The specification's names: 1 to 128 of A-Z a-z 0-9 _ - . (agentd builds its own
    // names and the model's from it, so nothing else is let through).
    bool name_ok = !info.name.empty() && info.name.size() <= 128 &&
                   std::all_of(info.name.begin(), info.name.end(), [](char c) {
                     return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                   });
    if (!name_ok) {
      skipped->push_back(absl::StrCat("a tool named \"",
                                      EscapeForTerminal(Utf8Prefix(info.name, 80, "…")),
                                      "\" (names are 1 to 128 of A-Z a-z 0-9 _ - .)"));
      continue;
    }
    auto schema = t.find("inputSchema");
    if (schema == t.end() || !schema->is_object() || Str(*schema, "type") != "object") {
      skipped->push_back(absl::StrCat(info.name, " (its inputSchema is not of type object)"));
      continue;
    }
    info.input_schema = *schema;
    info.input_schema.erase("$schema");  // providers reject some drafts' markers
    std::string title = Str(t, "title");
    const json& ann = t.value("annotations", json::object());
    if (ann.is_object()) {
      if (title.empty()) title = Str(ann, "title");
      info.read_only = Flag(ann, "readOnlyHint", false);
      info.destructive = Flag(ann, "destructiveHint", true);
      info.idempotent = Flag(ann, "idempotentHint", false);
    }
    std::string description = Str(t, "description");
    info.description = ValidUtf8(title.empty()         ? description
                                 : description.empty() ? title
                                                       : absl::StrCat(title, ": ", description));
    info.description = Utf8Prefix(info.description, 4096, "…");
    if (tools->size() >= kMaxTools) {
      skipped->push_back(absl::StrCat(info.name, " (over ", kMaxTools, " tools)"));
      continue;
    }
    tools->push_back(std::move(info));
  }
  auto cursor = result.find("nextCursor");
  if (cursor != result.end() && cursor->is_string()) *next_cursor = cursor->get<std::string>();
  return absl::OkStatus();
}

absl::StatusOr<CallResult> ParseCallResult(const json& result, size_t output_cap) {
  if (!result.is_object()) return absl::DataLossError("tools/call: the result is not an object");
  std::string type = Str(result, "resultType");
  if (!type.empty() && type != "complete") {
    // 2026-07-28's multi round-trip: the server wants input (elicitation, sampling) that
    // agentd's client does not give.
    return absl::FailedPreconditionError(
        absl::StrCat("the tool asked for input agentd's MCP client does not give (resultType \"",
                     Utf8Prefix(type, 40, "…"), "\")"));
  }
  CallResult out;
  out.is_error = Flag(result, "isError", false);
  std::vector<std::string> parts;
  const json& content = result.value("content", json::array());
  if (content.is_array()) {
    for (const json& c : content) {
      if (!c.is_object()) continue;
      std::string kind = Str(c, "type");
      if (kind == "text") {
        parts.push_back(Str(c, "text"));
      } else if (kind == "image" || kind == "audio") {
        parts.push_back(absl::StrCat("[", kind, " ",
                                     EscapeForTerminal(Utf8Prefix(Str(c, "mimeType"), 80, "…")),
                                     ", ", Str(c, "data").size() * 3 / 4, " bytes, not shown]"));
      } else if (kind == "resource_link") {
        parts.push_back(absl::StrCat(
            "[resource link: ", Utf8Prefix(Str(c, "uri"), 500, "…"),
            Str(c, "name").empty() ? ""
                                   : absl::StrCat(" (", Utf8Prefix(Str(c, "name"), 200, "…"), ")"),
            "]"));
      } else if (kind == "resource") {
        const json& r = c.value("resource", json::object());
        if (r.is_object() && r.contains("text")) {
          parts.push_back(absl::StrCat("[resource ", Utf8Prefix(Str(r, "uri"), 500, "…"), "]\n",
                                       Str(r, "text")));
        } else if (r.is_object()) {
          parts.push_back(absl::StrCat("[resource ", Utf8Prefix(Str(r, "uri"), 500, "…"), ": ",
                                       Str(r, "blob").size() * 3 / 4,
                                       " bytes of binary, not shown]"));
        }
      } else {
        parts.push_back(absl::StrCat(
            "[content of type \"", EscapeForTerminal(Utf8Prefix(kind, 40, "…")), "\", not shown]"));
      }
    }
  }
  auto structured = result.find("structuredContent");
  if (parts.empty() && structured != result.end() && !structured->is_null()) {
    parts.push_back(DumpJson(*structured));
  }
  if (parts.empty() && content.is_array() == false) {
    return absl::DataLossError("tools/call: the result has no \"content\" list");
  }
  std::string text = ValidUtf8(absl::StrJoin(parts, "\n"));
  if (text.size() > output_cap) {
    size_t all = text.size();
    text = Utf8Prefix(text, output_cap, "");
    absl::StrAppend(&text, "\n[output cut: ", all, " bytes in all, the first ", text.size(),
                    " shown]");
  }
  out.text = std::move(text);
  return out;
}

}  // namespace internal

absl::StatusOr<std::vector<ToolInfo>> McpClient::ListTools(absl::Duration timeout,
                                                           const llm::CancelToken* cancel) {
  tools_changed_->store(false);
  std::vector<ToolInfo> tools;
  std::vector<std::string> skipped;
  std::string cursor;
  std::set<std::string> cursors;
  absl::Time deadline = absl::Now() + timeout;
  for (int page = 0; page < kMaxPages; ++page) {
    json params = json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    absl::Duration left = std::max(deadline - absl::Now(), absl::Milliseconds(1));
    absl::StatusOr<json> r = connection_->Request("tools/list", WithMeta(params), left, cancel);
    if (!r.ok()) return r.status();
    if (absl::Status s = internal::ParseToolsPage(*r, &tools, &skipped, &cursor); !s.ok()) return s;
    // A cursor seen before would go round forever.
    if (cursor.empty() || !cursors.insert(cursor).second) break;
  }
  std::set<std::string> seen;
  std::vector<ToolInfo> unique;
  for (ToolInfo& t : tools) {
    if (seen.insert(t.name).second) {
      unique.push_back(std::move(t));
    } else {
      skipped.push_back(absl::StrCat(t.name, " (listed twice)"));
    }
  }
  for (const std::string& s : skipped) {
    spdlog::warn("MCP server {}: tool left out: {}", name_, s);
  }
  return unique;
}

absl::StatusOr<CallResult> McpClient::CallTool(const std::string& tool, const json& arguments,
                                               absl::Duration timeout,
                                               const llm::CancelToken* cancel, size_t output_cap,
                                               const std::string& traceparent) {
  json params = WithMeta({{"name", tool}, {"arguments", arguments}});
  if (!traceparent.empty()) params["_meta"]["traceparent"] = traceparent;
  absl::StatusOr<json> r = connection_->Request("tools/call", std::move(params), timeout, cancel);
  if (!r.ok()) return r.status();
  return internal::ParseCallResult(*r, output_cap);
}

}  // namespace agentd::mcp
