#include "manager/ctl/cli.h"

#include <cmath>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/values.h"

namespace agentd::ctl {

int Usage(const std::string& msg) {
  std::fprintf(
      stderr,
      "agentctl: %s\n(agentctl --help lists the commands; agentctl COMMAND --help explains one)\n",
      TerminalText(msg, Lines::kMany).c_str());
  return kUsage;
}

int Fail(const std::string& msg, int code) {
  // Error messages quote what was asked for and what the daemon holds: escaped too.
  std::fprintf(stderr, "agentctl: %s\n", TerminalText(msg, Lines::kMany).c_str());
  return code;
}

int RpcFailed(const char* what, const grpc::Status& s) {
  return Fail(absl::StrCat(
      what, " failed: ", absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
      ": ", s.error_message()));
}

std::string TimeString(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z",
                          absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
                          absl::LocalTimeZone());
}

void Print(const Globals& g, const google::protobuf::Message& msg, const std::string& table) {
  switch (g.format) {
    case Format::kJson:
      std::fputs((ToJson(msg) + "\n").c_str(), stdout);
      break;
    case Format::kYaml:
      std::fputs(ToYaml(msg).c_str(), stdout);
      break;
    case Format::kTable:
      // The last line of defence: whatever a command put in its text, nothing in it
      // reaches the terminal as a control sequence (cells and values were made one-line
      // by Table and KeyValues; multi-line fields keep their newlines).
      std::fputs(TerminalText(table, Lines::kMany).c_str(), stdout);
      break;
  }
}

std::string ShortDuration(const google::protobuf::Duration& d) {
  int64_t s = d.seconds();
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m", s % 60, "s");
  if (s < 86400) return absl::StrCat(s / 3600, "h", (s % 3600) / 60, "m");
  return absl::StrCat(s / 86400, "d", (s % 86400) / 3600, "h");
}

// Fixed-width columns, kubectl style.
std::string Table(const std::vector<std::vector<std::string>>& raw) {
  // Each cell on one line, escaped before it is measured.
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : raw) {
    rows.emplace_back();
    for (const std::string& cell : r) rows.back().push_back(TerminalText(cell));
  }
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 3, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

CLI::App* AddCommand(CLI::App* parent, const std::string& name, const std::string& summary,
                     const std::string& help) {
  CLI::App* cmd = parent->add_subcommand(name, summary);
  // Global flags (-o, --socket, …) may come after the command, as kubectl allows.
  cmd->fallthrough();
  std::string footer = help;
  if (!footer.empty() && footer.back() != '\n') footer += '\n';
  footer +=
      "\nGlobal flags (-o json|yaml, --socket, --addr, --timeout...) may come before or after\n"
      "the command: agentctl --help lists them, with the environment and the exit codes.";
  cmd->footer(footer);
  return cmd;
}

namespace {

std::string CheckDuration(const std::string& text) {
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  if (!d.ok()) return std::string(d.status().message());
  if (*d <= absl::ZeroDuration()) return absl::StrCat("\"", text, "\" must be above zero");
  return "";
}

std::string CheckCount(const std::string& text) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 0) {
    return absl::StrCat("\"", text, "\" is not a whole number");
  }
  return "";
}

std::string CheckUsd(const std::string& text) {
  double usd = 0;
  if (!absl::SimpleAtod(absl::StripPrefix(text, "$"), &usd) || !(usd >= 0) || std::isinf(usd)) {
    return absl::StrCat("\"", text, "\" is not an amount of USD");
  }
  return "";
}

}  // namespace

const CLI::Validator kPositiveDuration(CheckDuration, "");
const CLI::Validator kCount(CheckCount, "");
const CLI::Validator kUsd(CheckUsd, "");

absl::Duration DurationValue(const std::string& text) {
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  return d.ok() ? *d : absl::ZeroDuration();
}

double UsdValue(const std::string& text) {
  double usd = 0;
  return absl::SimpleAtod(absl::StripPrefix(text, "$"), &usd) ? usd : 0;
}

}  // namespace agentd::ctl
