// Tools: what an agent can do in its workspace, each with a JSON Schema the model sees.
//
// A ToolBox holds the tools a role may use (its `tools:` list) and runs a call the model
// made: unknown tools, arguments that are not JSON, and arguments that do not fit the
// schema come back as errors the model can read and correct — never as a crash.
//
// Thread-safety: tools are stateless apart from their Options; Run may be called from
// several threads.
#ifndef AGENTD_AGENTS_TOOLS_TOOL_H_
#define AGENTD_AGENTS_TOOLS_TOOL_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agents/llm/http.h"
#include "agents/tools/workspace.h"
#include "nlohmann/json.hpp"

namespace agentd::tools {

struct ToolResult {
  ToolResult() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): `return {text}` and `{text, true}` read well.
  ToolResult(std::string c, bool e = false) : content(std::move(c)), error(e) {}

  std::string content;  // what the model is shown
  bool error = false;   // an error the model should see and may correct
  // For people, not the model: the files the call changed, as a unified diff (fs.write,
  // fs.edit, git.commit); empty when it changed none.
  std::string diff;
};

// The shell policy: programs allowed, limits, and the sandbox.
struct ShellOptions {
  std::vector<std::string> allow;         // program names (no paths)
  std::vector<std::string> test_command;  // tests.run's command; empty: detected
  std::string sandbox = "auto";           // policy.shell.sandbox: auto | required | off
  // bubblewrap: a program name, found through PATH when a program is run, or a path.
  std::string bwrap = "bwrap";
  // Why the sandbox does not work on this machine, as the agent's probe at start found it
  // (ProbeSandbox in shell.h); empty when it works, or was not probed. With "required"
  // nothing runs then; with "auto" programs run unconfined, and every result says so.
  std::string sandbox_broken;
  absl::Duration timeout = absl::Seconds(120);
  size_t output_cap = 64 << 10;  // bytes of stdout+stderr kept (the end is kept)
  std::vector<std::string> env;  // extra NAME=value for the program (agentd's own tools)
  bool network = false;          // a person granted network access to this call
  // For agentd's git tools only. Every other program sees the workspace's `.git` (a
  // directory, or a worktree's `gitdir:` file) read-only, so that nothing it runs can
  // plant configuration that makes git run a program; git itself must write there.
  bool git_writable = false;
  // Directories outside the workspace bound writable into the sandbox (a worktree's git
  // directories; a scratch directory of agentd's own).
  std::vector<std::string> writable_binds;
  // Directories outside the workspace shown read-only besides the system's (where an MCP
  // server's code lives).
  std::vector<std::string> read_only_binds;
  // Whether the program gets the agent's basic environment (PATH, HOME, LANG, LC_*, TZ,
  // USER, LOGNAME); false: PATH, LANG, LC_* and TZ only, besides `env`.
  bool inherit_env = true;
};

// What a tool may ask a person for, beyond the role's grant.
enum class ConsentKind {
  kNetwork,
  kPathOutsideWorkspace,
  kCommandNotAllowed,
  kDestructiveTool,  // an MCP tool its server marks destructive
};

struct ConsentAsk {
  std::string tool;  // "shell.run"
  ConsentKind kind;
  std::string summary;                         // for the person: what and why
  std::map<std::string, std::string> details;  // particulars by name; never secrets
  std::string request_id;                      // a retried call asks once
};

// Asks a person (through agentd) and waits for the decision.
class ConsentAsker {
 public:
  virtual ~ConsentAsker() = default;
  // True when approved; false when denied or expired unanswered. Errors: CANCELLED (the
  // task was canceled while waiting), UNAVAILABLE (agentd could not be asked).
  virtual absl::StatusOr<bool> Ask(const ConsentAsk& ask, const llm::CancelToken* cancel) const = 0;
};

struct ToolContext {
  const Workspace* workspace = nullptr;
  const ShellOptions* shell = nullptr;
  const llm::CancelToken* cancel = nullptr;
  std::string task_id;  // the task the call is for
  std::string call_id;  // the model's id for the call: a key for idempotent requests
  const ConsentAsker* consent = nullptr;  // null: what needs consent is refused
  // The W3C trace context of the call's span ("00-…"), when the task is traced: a tool
  // that calls out (an MCP server) passes it on. Empty otherwise.
  std::string traceparent;
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string name() const = 0;  // "fs.read"
  virtual std::string description() const = 0;
  virtual nlohmann::json schema() const = 0;  // JSON Schema (type object) of the arguments
  // Whether it changes the workspace or the world (journaled, checkpointed, audited).
  virtual bool side_effect() const = 0;
  // Whether running it twice for the same call id has the effect of running it once
  // (the daemon dedupes by call id): a call cut off by a restart is simply run again.
  virtual bool idempotent() const { return false; }
  // `args` already fit the schema's required keys and types.
  virtual ToolResult Run(const nlohmann::json& args, const ToolContext& ctx) const = 0;
};

// Every tool agentd-agent implements, by name.
std::vector<std::unique_ptr<Tool>> BuiltinTools();

class ToolBox {
 public:
  // The tools of `names` that are built in (others are left to the caller: delegate,
  // message, … go to the daemon).
  static ToolBox ForRole(const std::vector<std::string>& names);
  // Adds a tool implemented outside this folder (those that reach the daemon); it
  // replaces a tool of the same name.
  void Add(std::unique_ptr<Tool> tool);
  const Tool* Find(const std::string& name) const;
  std::vector<const Tool*> tools() const;
  // Runs the call; every failure is a ToolResult with error set, naming the tool. The
  // content is always valid UTF-8: bytes that are not are shown as U+FFFD, with a note.
  ToolResult Call(const std::string& name, const std::string& arguments_json,
                  const ToolContext& ctx) const;

 private:
  std::map<std::string, std::unique_ptr<Tool>> tools_;
};

// Checks `args` against the subset of JSON Schema agentd's tools use (type object,
// properties with type string|integer|boolean|array|object, required). The error says
// which argument and what was expected.
absl::Status CheckArguments(const nlohmann::json& schema, const nlohmann::json& args);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_TOOL_H_
