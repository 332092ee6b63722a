// What agentctl's commands share: global flags, exit codes, output and argument parsing.
#ifndef AGENTD_MANAGER_CTL_CLI_H_
#define AGENTD_MANAGER_CTL_CLI_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/status.h"
#include "manager/ctl/connection.h"
#include "manager/ctl/output.h"

namespace agentd::ctl {

// Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 cannot connect to agentd.
constexpr int kOk = 0, kFailed = 1, kUsage = 2, kNoConnection = 3;

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

// A command's arguments: positional ones, and --flag value / --flag=value options.
struct CmdArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;                  // a repeated flag: its last value
  std::map<std::string, std::vector<std::string>> repeated;  // every value, in order
};
// `valued` flags take a value, `boolean` ones do not; any other flag is an error.
absl::StatusOr<CmdArgs> ParseCmdArgs(const std::vector<std::string>& args,
                                     const std::set<std::string>& valued,
                                     const std::set<std::string>& boolean);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_CLI_H_
