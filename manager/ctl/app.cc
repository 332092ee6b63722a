#include "manager/ctl/app.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "common/token.h"
#include "common/values.h"
#include "common/version.h"
#include "manager/ctl/agents_cmd.h"
#include "manager/ctl/chat_cmd.h"
#include "manager/ctl/cli.h"
#include "manager/ctl/completion.h"
#include "manager/ctl/doctor_cmd.h"
#include "manager/ctl/events_cmd.h"
#include "manager/ctl/logs_cmd.h"
#include "manager/ctl/mcp_cmd.h"
#include "manager/ctl/tasks_cmd.h"
#include "manager/ctl/transcript_cmd.h"

namespace agentd::ctl {
namespace {

constexpr char kDescription[] =
    "agentctl drives agentd, the daemon that runs and supervises teams of LLM agents:\n"
    "its agents, goals, plans, consents, logs, usage and audit.";

constexpr char kFooter[] = R"(Environment:
  AGENTD_SOCKET   agentd's unix socket when --socket is not given (otherwise the
                  default agentd uses: agentd --print-paths shows it)
  AGENTD_ADDR     agentd's TCP listener when --addr is not given
  AGENTD_TOKEN    the admin token for --addr when --token/--token-file are not given

Exit codes:
  0  ok
  1  the operation failed (a goal --wait that failed or was canceled, a broken audit chain)
  2  usage error: an unknown command or flag, a missing or bad argument
  3  cannot connect to agentd (answered at once when nothing listens)
  4  still running when a wait ran out (goal --wait --timeout, bootstrap --timeout)

Examples:
  agentctl get agents
  agentctl goal "Add mul() with tests" --workspace ~/src/calc --check "pytest -q" --wait
  agentctl logs coder-1 -f
  agentctl -o json get tasks --goal g-1

agentctl COMMAND --help (or agentctl help COMMAND) explains a command, with examples.)";

// What the global flags were given as; turned into Globals once parsing succeeded.
struct GlobalFlags {
  std::string token_file, output = "table", timeout;
};

// The flags every command accepts, before or after its name.
void AddGlobalFlags(CLI::App* app, Globals* g, GlobalFlags* raw) {
  app->add_option("--socket", g->conn.socket, "agentd's unix socket")
      ->envname("AGENTD_SOCKET")
      ->type_name("PATH");
  app->add_option("--addr", g->conn.addr, "use agentd's TCP listener instead")
      ->envname("AGENTD_ADDR")
      ->type_name("HOST:PORT");
  app->add_option("--token", g->conn.token, "admin token for --addr")->envname("AGENTD_TOKEN");
  app->add_option("--token-file", raw->token_file,
                  "read the admin token from FILE (0600), e.g. STATE_DIR/admin.token")
      ->type_name("FILE");
  app->add_option("--tls-ca", g->conn.tls_ca, "use TLS on --addr, trusting this CA certificate")
      ->type_name("FILE");
  app->add_option("-o,--output", raw->output, "output format (default table)")
      // "-o=json" as well as "-ojson", "-o json" and "--output=json".
      ->transform([](const std::string& v) { return !v.empty() && v[0] == '=' ? v.substr(1) : v; })
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  app->add_option("--timeout", raw->timeout, "per-call deadline (default 10s)")
      ->check(kPositiveDuration)
      ->type_name("DURATION");
}

// The subcommand a word path names ({"get", "agents"}), or null.
CLI::App* FindCommand(CLI::App* root, const std::vector<std::string>& path) {
  CLI::App* cmd = root;
  for (const std::string& word : path) {
    auto found = cmd->get_subcommands([&](CLI::App* sub) { return sub->check_name(word); });
    if (found.empty()) return nullptr;
    cmd = found.front();
  }
  return cmd;
}

// The full name of a command, "agentctl get agents".
std::string CommandPath(const CLI::App* cmd) {
  std::vector<std::string> names;
  for (const CLI::App* c = cmd; c != nullptr; c = c->get_parent()) names.push_back(c->get_name());
  std::reverse(names.begin(), names.end());
  return absl::StrJoin(names, " ");
}

// The help of one command, with its full name in the usage line. (App::help() would show
// the help of the command being run instead, once one is.)
std::string HelpOf(CLI::App* cmd) {
  return cmd->get_formatter()->make_help(cmd, CommandPath(cmd), CLI::AppFormatMode::Normal);
}

// Every command under `cmd` that runs something, with its help, depth first (for
// `help --all`, which the man page is made from).
void AllHelp(CLI::App* cmd, std::string* out) {
  for (CLI::App* sub : cmd->get_subcommands([](CLI::App* s) { return !s->get_group().empty(); })) {
    if (sub->get_subcommands([](CLI::App*) { return true; }).empty()) {
      // "agentctl get agents:" alone on its line: help2man makes it a subsection.
      absl::StrAppend(out, "\n", CommandPath(sub), ":\n", HelpOf(sub));
    }
    AllHelp(sub, out);
  }
}

// The deepest command the parse entered, for pointing a usage error at its help.
CLI::App* Deepest(CLI::App* app) {
  for (CLI::App* sub : app->get_subcommands()) return Deepest(sub);
  return app;
}

struct HelpOpts {
  std::vector<std::string> command;
  bool all = false;
  CLI::App* root = nullptr;
};

int HelpCmd(const Globals&, const HelpOpts& o) {
  if (o.all) {
    std::string out = HelpOf(o.root);
    AllHelp(o.root, &out);
    std::fputs(out.c_str(), stdout);
    return kOk;
  }
  CLI::App* cmd = FindCommand(o.root, o.command);
  if (cmd == nullptr) {
    return Usage(absl::StrCat("no command \"", absl::StrJoin(o.command, " "), "\""));
  }
  std::fputs(HelpOf(cmd).c_str(), stdout);
  return kOk;
}

struct CompletionOpts {
  std::string shell;
};

int CompletionCmd(const Globals&, const CompletionOpts& o) {
  std::fputs(CompletionScript(o.shell).c_str(), stdout);
  return kOk;
}

std::unique_ptr<CLI::App> BuildApp(Globals* g, GlobalFlags* raw, Action* action) {
  auto app = std::make_unique<CLI::App>(kDescription, "agentctl");
  app->require_subcommand(1);
  app->footer(kFooter);
  app->set_version_flag("--version", absl::StrCat("agentctl ", kVersion, " (", kGitRevision, ", ",
                                                  kBuildType, ", API ", kApiVersion, ")"));
  app->get_formatter()->column_width(34);
  AddGlobalFlags(app.get(), g, raw);
  CommandTree tree;
  tree.root = app.get();
  tree.globals = g;
  tree.action = action;
  tree.get = AddCommand(app.get(), "get", "list agents, tasks, plans or consent requests",
                        "Examples:\n  agentctl get agents\n  agentctl get tasks --goal g-1 --tree");
  tree.get->require_subcommand(1);
  tree.describe =
      AddCommand(app.get(), "describe", "one agent, task, plan or consent request in full",
                 "Example:\n  agentctl describe task t-4");
  tree.describe->require_subcommand(1);
  AddAgentCommands(tree);
  AddTaskCommands(tree);
  AddEventCommands(tree);
  AddTranscriptCommands(tree);
  AddLogCommands(tree);
  AddChatCommands(tree);
  AddMcpCommands(tree);
  AddDoctorCommands(tree);
  {
    CLI::App* cmd = AddCommand(app.get(), "help", "a command's help",
                               "Examples:\n  agentctl help logs\n  agentctl help get agents\n"
                               "  agentctl help --all   # every command");
    auto o = OnRun(tree, cmd, HelpCmd);
    o->root = app.get();
    cmd->add_option("COMMAND", o->command, "the command's words");
    cmd->add_flag("--all", o->all, "every command's help");
  }
  {
    CLI::App* cmd = AddCommand(
        app.get(), "completion", "a shell completion script (bash or zsh)",
        "Completes commands, flags and their values, and the ids agentd holds (agents,\n"
        "tasks, goals, plans, consent requests) by asking it as you type.\n\n"
        "Examples:\n"
        "  source <(agentctl completion bash)            # this shell\n"
        "  agentctl completion bash > ~/.local/share/bash-completion/completions/agentctl\n"
        "  agentctl completion zsh > \"${fpath[1]}/_agentctl\"");
    auto o = OnRun(tree, cmd, CompletionCmd);
    cmd->add_option("SHELL", o->shell, "the shell")
        ->required()
        ->check(CLI::IsMember({"bash", "zsh"}));
  }
  return app;
}

// Globals from the flags as given: the token file read, the format and the deadline set.
int FinishGlobals(const GlobalFlags& raw, Globals* g) {
  if (!raw.token_file.empty()) {
    absl::StatusOr<std::string> t = ReadTokenFile(raw.token_file);
    if (!t.ok()) return Fail(std::string(t.status().message()));
    g->conn.token = *t;
  }
  absl::StatusOr<Format> f = ParseFormat(raw.output);
  if (!f.ok()) return Usage(std::string(f.status().message()));
  g->format = *f;
  if (!raw.timeout.empty()) g->conn.timeout = DurationValue(raw.timeout);
  // (--addr without a token is refused when a command connects: help, completion and
  // config validate work whatever the environment holds.)
  return kOk;
}

}  // namespace

int RunAgentctl(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == kCompleteCommand) {
    // agentctl __complete WORDS… -- CURRENT: what the completion scripts call; the last
    // two words are always "--" and the word being typed (which may be "--" itself).
    if (args.size() < 3 || args[args.size() - 2] != "--") {
      return Usage("__complete WORDS... -- CURRENT (what the completion scripts call)");
    }
    std::vector<std::string> before(args.begin() + 1, args.end() - 2);
    const std::string& current = args.back();
    for (const std::string& word : Completions(before, current)) std::printf("%s\n", word.c_str());
    return kOk;
  }
  Globals g;
  GlobalFlags raw;
  Action action;
  std::unique_ptr<CLI::App> app = BuildApp(&g, &raw, &action);
  if (args.empty()) {
    std::fputs(app->help().c_str(), stderr);
    return kUsage;
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app->parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app->help().c_str(), stdout);  // the help of the command it was asked in
    return kOk;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app->help("", CLI::AppFormatMode::All).c_str(), stdout);
    return kOk;
  } catch (const CLI::CallForVersion& e) {
    std::printf("%s\n", e.what());
    return kOk;
  } catch (const CLI::ParseError& e) {
    CLI::App* where = Deepest(app.get());
    std::string what = e.what();
    // A word where a command was due: CLI11 reports the command as missing; say which
    // word it did not know instead.
    // (With fallthrough, a word a command had no place for is kept by the top level.)
    std::vector<std::string> extra = app->remaining(/*recurse=*/true);
    if (!extra.empty() && !where->get_subcommands([](CLI::App*) { return true; }).empty() &&
        where->get_subcommands().empty()) {
      what = absl::StrCat("unknown command \"", extra.front(), "\"");
    }
    std::fprintf(stderr, "agentctl: %s\n(%s --help shows how to use it)\n",
                 TerminalText(what, Lines::kMany).c_str(), CommandPath(where).c_str());
    return kUsage;
  }
  if (int rc = FinishGlobals(raw, &g); rc != kOk) return rc;
  if (!action) return Usage("no command given");
  return action();
}

std::vector<std::string> Completions(const std::vector<std::string>& before,
                                     const std::string& current) {
  Globals g;
  GlobalFlags raw;
  Action action;
  std::unique_ptr<CLI::App> app = BuildApp(&g, &raw, &action);
  return CompleteWords(app.get(), before, current);
}

}  // namespace agentd::ctl
