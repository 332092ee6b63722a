#include "agents/mcp/connection.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_dump.h"
#include "common/text.h"

namespace agentd::mcp {

namespace {
constexpr char kCodePayload[] = "agentd.mcp/jsonrpc-error-code";
}  // namespace

std::optional<int64_t> RpcErrorCode(const absl::Status& s) {
  auto p = s.GetPayload(kCodePayload);
  int64_t code = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &code)) return std::nullopt;
  return code;
}

namespace internal {

using nlohmann::json;

Incoming Classify(const json& m) {
  Incoming in;
  if (!m.is_object()) {
    in.why = absl::StrCat("a message must be a JSON object, got ", m.type_name());
    return in;
  }
  auto jv = m.find("jsonrpc");
  if (jv == m.end() || !jv->is_string() || jv->get<std::string>() != "2.0") {
    in.why = "the message is not JSON-RPC 2.0 (\"jsonrpc\": \"2.0\" is missing)";
    return in;
  }
  auto method = m.find("method");
  auto id = m.find("id");
  if (method != m.end()) {
    if (!method->is_string()) {
      in.why = "\"method\" must be a string";
      return in;
    }
    in.method = method->get<std::string>();
    auto params = m.find("params");
    in.params = params != m.end() && params->is_object() ? *params : json::object();
    if (id == m.end()) {
      in.kind = Incoming::Kind::kNotification;
    } else if (id->is_string() || id->is_number_integer()) {
      in.kind = Incoming::Kind::kRequest;
      in.id_json = *id;
    } else {
      in.why = "a request's \"id\" must be a string or an integer";
    }
    return in;
  }
  // A response: to one of agentd's requests, whose ids are integers.
  if (id == m.end() || !id->is_number_integer()) {
    in.why = "a response's \"id\" must be one of the client's (integer) request ids";
    return in;
  }
  in.kind = Incoming::Kind::kResponse;
  in.id = id->get<int64_t>();
  auto result = m.find("result");
  auto error = m.find("error");
  if (error != m.end()) {
    std::string message = "(no message)";
    int64_t code = 0;
    if (error->is_object()) {
      auto msg = error->find("message");
      if (msg != error->end() && msg->is_string()) message = msg->get<std::string>();
      auto c = error->find("code");
      if (c != error->end() && c->is_number_integer()) code = c->get<int64_t>();
    }
    absl::Status s = absl::UnknownError(absl::StrCat("the server answered with error ", code, ": ",
                                                     Utf8Prefix(message, 2000, "…")));
    s.SetPayload(kCodePayload, absl::Cord(absl::StrCat(code)));
    in.error = s;
  } else if (result == m.end()) {
    in.error = absl::DataLossError("the server's response has neither \"result\" nor \"error\"");
  } else {
    in.result = *result;
  }
  return in;
}

}  // namespace internal
}  // namespace agentd::mcp
