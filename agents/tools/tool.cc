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

absl::Status CheckArguments(const json& schema, const json& args) {
  if (!args.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("arguments must be a JSON object, got ", args.type_name()));
  }
  const json& props = schema.value("properties", json::object());
  for (const json& req : schema.value("required", json::array())) {
    if (!args.contains(req.get<std::string>())) {
      std::string key = req.get<std::string>();
      return absl::InvalidArgumentError(
          absl::StrCat("argument \"", key, "\" is required (",
                       props.value(key, json::object()).value("type", "any"), ")"));
    }
  }
  for (const auto& [key, value] : args.items()) {
    if (!props.contains(key)) {
      std::vector<std::string> known;
      for (const auto& [k, v] : props.items()) known.push_back(k);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown argument \"", key, "\" (known: ", absl::StrJoin(known, ", "), ")"));
    }
    std::string type = props[key].value("type", "");
    bool ok = type.empty() || (type == "string" && value.is_string()) ||
              (type == "integer" && value.is_number_integer()) ||
              (type == "number" && value.is_number()) ||
              (type == "boolean" && value.is_boolean()) || (type == "array" && value.is_array()) ||
              (type == "object" && value.is_object());
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument \"", key, "\" must be ", type, ", got ", value.type_name()));
    }
    if (type == "array" && props[key].contains("items")) {
      std::string item = props[key]["items"].value("type", "");
      for (const json& v : value) {
        if (item == "string" && !v.is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat("argument \"", key, "\" must be an array of strings"));
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
