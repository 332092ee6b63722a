#include "agents/tools/tool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/text.h"

namespace agentd::tools {

using nlohmann::json;

namespace {

// A result goes to the model, the session store (JSON) and agentd (protobuf): it must be
// UTF-8. Output that is not — a Latin-1 or binary file, a program's raw bytes — shows
// U+FFFD for each bad byte, and the model is told why, instead of the agent aborting.
ToolResult AsText(ToolResult r) {
  size_t replaced = 0;
  std::string text = ValidUtf8(r.content, &replaced);
  if (replaced > 0) {
    absl::StrAppend(&text, "\n[note: ", replaced,
                    " byte(s) of this output are not UTF-8 text (binary data, or another "
                    "encoding such as Latin-1); each is shown as U+FFFD]");
  }
  r.content = std::move(text);
  return r;
}

}  // namespace

namespace {

// Whether `value` is of JSON Schema type `type` (unknown types pass: the tool checks).
bool OfType(const std::string& type, const json& value) {
  if (type == "string") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  if (type == "null") return value.is_null();
  return true;
}

}  // namespace

absl::Status CheckArguments(const json& schema, const json& args) {
  if (!args.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("arguments must be a JSON object, got ", args.type_name()));
  }
  // A schema is the tool's (built in, or an MCP server's): anything of an unexpected shape
  // in it is skipped, never thrown on.
  static const json kEmpty = json::object();
  const json& props_in = schema.is_object() ? schema.value("properties", kEmpty) : kEmpty;
  const json& props = props_in.is_object() ? props_in : kEmpty;
  const json& required = schema.is_object() ? schema.value("required", json::array()) : kEmpty;
  auto type_of = [](const json& prop) -> json {
    return prop.is_object() && prop.contains("type") ? prop["type"] : json();
  };
  for (const json& req : required.is_array() ? required : json::array()) {
    if (!req.is_string()) continue;
    const std::string key = req.get<std::string>();
    if (!args.contains(key)) {
      json t = props.contains(key) ? type_of(props[key]) : json();
      return absl::InvalidArgumentError(absl::StrCat("argument \"", key, "\" is required (",
                                                     t.is_string() ? t.get<std::string>() : "any",
                                                     ")"));
    }
  }
  // JSON Schema allows properties it does not name unless additionalProperties says no;
  // agentd's own tools leave it out and mean no.
  bool open =
      schema.is_object() && schema.contains("additionalProperties") &&
      !(schema["additionalProperties"].is_boolean() && !schema["additionalProperties"].get<bool>());
  for (const auto& [key, value] : args.items()) {
    if (!props.contains(key)) {
      if (open) continue;
      std::vector<std::string> known;
      for (const auto& [k, v] : props.items()) known.push_back(k);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown argument \"", key, "\" (known: ", absl::StrJoin(known, ", "), ")"));
    }
    json t = type_of(props[key]);
    std::vector<std::string> types;
    if (t.is_string()) types.push_back(t.get<std::string>());
    if (t.is_array()) {
      for (const json& e : t) {
        if (e.is_string()) types.push_back(e.get<std::string>());
      }
    }
    bool ok = types.empty();
    for (const std::string& ty : types) ok = ok || OfType(ty, value);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("argument \"", key, "\" must be ",
                                                     absl::StrJoin(types, " or "), ", got ",
                                                     value.type_name()));
    }
    const json& items =
        props[key].is_object() && props[key].contains("items") ? props[key]["items"] : kEmpty;
    if (value.is_array() && items.is_object() && items.contains("type") &&
        items["type"].is_string()) {
      std::string item = items["type"].get<std::string>();
      for (const json& v : value) {
        if (!OfType(item, v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("argument \"", key, "\" must be an array of ", item, "s"));
        }
      }
    }
  }
  return absl::OkStatus();
}

std::vector<std::unique_ptr<Tool>> NewFsTools();
std::unique_ptr<Tool> NewShellTool();
std::vector<std::unique_ptr<Tool>> NewGitTools();
std::unique_ptr<Tool> NewTestsTool();

std::vector<std::unique_ptr<Tool>> BuiltinTools() {
  std::vector<std::unique_ptr<Tool>> out = NewFsTools();
  out.push_back(NewShellTool());
  for (std::unique_ptr<Tool>& t : NewGitTools()) out.push_back(std::move(t));
  out.push_back(NewTestsTool());
  return out;
}

ToolBox ToolBox::ForRole(const std::vector<std::string>& names) {
  ToolBox box;
  for (std::unique_ptr<Tool>& t : BuiltinTools()) {
    if (std::find(names.begin(), names.end(), t->name()) != names.end()) {
      std::string name = t->name();
      box.tools_[name] = std::move(t);
    }
  }
  return box;
}

void ToolBox::Add(std::unique_ptr<Tool> tool) {
  std::string name = tool->name();
  tools_[name] = std::move(tool);
}

const Tool* ToolBox::Find(const std::string& name) const {
  auto it = tools_.find(name);
  return it == tools_.end() ? nullptr : it->second.get();
}

std::vector<const Tool*> ToolBox::tools() const {
  std::vector<const Tool*> out;
  for (const auto& [name, t] : tools_) out.push_back(t.get());
  return out;
}

ToolResult ToolBox::Call(const std::string& name, const std::string& arguments_json,
                         const ToolContext& ctx) const {
  auto run = [&]() -> ToolResult {
    const Tool* tool = Find(name);
    if (tool == nullptr) {
      std::vector<std::string> names;
      for (const auto& [n, t] : tools_) names.push_back(n);
      return {absl::StrCat("no tool named \"", name,
                           "\" is available to you (you have: ", absl::StrJoin(names, ", "), ")"),
              true};
    }
    json args = json::parse(arguments_json.empty() ? "{}" : arguments_json, nullptr, false);
    if (args.is_discarded()) {
      return {absl::StrCat(name, ": the arguments are not valid JSON: ",
                           Utf8Prefix(arguments_json, 200, "…")),
              true};
    }
    if (absl::Status s = CheckArguments(tool->schema(), args); !s.ok()) {
      return {absl::StrCat(name, ": ", s.message()), true};
    }
    try {
      return tool->Run(args, ctx);
    } catch (const std::exception& e) {  // nlohmann::json on a value of an unexpected shape
      return {absl::StrCat(name, ": ", e.what()), true};
    }
  };
  return AsText(run());
}

}  // namespace agentd::tools
