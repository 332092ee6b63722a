// What agentctl's commands share: global flags, exit codes, output and argument parsing.
#ifndef AGENTD_MANAGER_CTL_CLI_H_
#define AGENTD_MANAGER_CTL_CLI_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/status.h"
#include "manager/ctl/connection.h"
#include "manager/ctl/output.h"

namespace agentd::ctl {

// Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 cannot connect to agentd,
// 4 still running when a wait ran out (goal --wait --timeout, bootstrap).
constexpr int kOk = 0, kFailed = 1, kUsage = 2, kNoConnection = 3, kStillRunning = 4;

struct Globals {
  ConnectionOptions conn;
  Format format = Format::kTable;
};

// Print the message (TerminalText, kMany) on stderr and return the exit code.
int Usage(const std::string& msg);
int Fail(const std::string& msg, int code = kFailed);
int RpcFailed(const char* what, const grpc::Status& s);

// A timestamp in local time, "2026-11-24 08:30:00 UTC".
std::string TimeString(const google::protobuf::Timestamp& t);
// "42s", "3m5s", "2h10m", "4d3h".
std::string ShortDuration(const google::protobuf::Duration& d);
// `msg` as -o asks: JSON, YAML, or the given table text, which is printed through
// TerminalText (kMany): no control sequence in it reaches the terminal.
void Print(const Globals& g, const google::protobuf::Message& msg, const std::string& table);
// Fixed-width columns, kubectl style; the first row is the header. Every cell is shown on
// one line through TerminalText.
std::string Table(const std::vector<std::vector<std::string>>& rows);

// The command the parser chose, bound to its options: set by the command's CLI11
// callback, run once parsing has succeeded (so global flags given after it count too).
using Action = std::function<int()>;

// The options of a command that takes none, and of one that takes a single id.
struct NoOpts {};
struct IdOpts {
  std::string id;
};

// Where a command file adds its commands: the top level, the `get` and `describe`
// verbs, and the globals and action every command's run shares.
struct CommandTree {
  CLI::App* root = nullptr;
  CLI::App* get = nullptr;
  CLI::App* describe = nullptr;
  const Globals* globals = nullptr;
  Action* action = nullptr;
};

// A subcommand `name` of `parent`: `summary` is its line in the parent's list, `help`
// (examples, notes) follows its options in its own --help.
CLI::App* AddCommand(CLI::App* parent, const std::string& name, const std::string& summary,
                     const std::string& help = "");

// Makes `run(globals, *opts)` the action when `cmd` is chosen; returns the options for the
// caller to bind flags and positionals to. The options live as long as the tree.
template <typename Opts>
std::shared_ptr<Opts> OnRun(const CommandTree& tree, CLI::App* cmd,
                            int (*run)(const Globals&, const Opts&)) {
  auto opts = std::make_shared<Opts>();
  const Globals* globals = tree.globals;
  Action* action = tree.action;
  cmd->callback([globals, action, opts, run] {
    *action = [globals, opts, run] { return run(*globals, *opts); };
  });
  return opts;
}

// Validators for flag values, checked while parsing (a bad value is a usage error,
// exit 2, naming the flag): a duration such as 500ms, 10s or 5m, above zero…
extern const CLI::Validator kPositiveDuration;
// …a whole number ≥ 0…
extern const CLI::Validator kCount;
// …and an amount of US dollars ≥ 0, with or without "$".
extern const CLI::Validator kUsd;
// The value of a flag checked by kPositiveDuration or kUsd.
absl::Duration DurationValue(const std::string& text);
double UsdValue(const std::string& text);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_CLI_H_
