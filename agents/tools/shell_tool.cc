// shell.run: one program of the allowlist, run with arguments and no shell at all, in the
// workspace, with a timeout and an output cap — inside bubblewrap (read-only system, the
// workspace writable, no network, own pid namespace) when the machine has it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agents/tools/shell.h"
#include "agents/tools/tool.h"

extern char** environ;

namespace agentd::tools {

absl::StatusOr<std::vector<std::string>> ParseCommand(absl::string_view command) {
  std::vector<std::string> argv;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (c == '\'' || c == '"') {
      size_t end = command.find(c, i + 1);
      if (end == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated ", std::string(1, c), " quote"));
      }
      absl::string_view inner = command.substr(i + 1, end - i - 1);
      if (c == '"' && (inner.find('$') != absl::string_view::npos ||
                       inner.find('`') != absl::string_view::npos)) {
        return absl::InvalidArgumentError(
            "$ and ` are not expanded (there is no shell): write the value itself");
      }
      word.append(inner.data(), inner.size());
      in_word = true;
      i = end;
    } else if (c == '\\' && i + 1 < command.size()) {
      word.push_back(command[++i]);
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) argv.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (absl::string_view(";|&$`<>(){}\n*?~").find(c) != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", std::string(1, c == '\n' ? ' ' : c),
          "' is shell syntax, and shell.run uses no shell: run one program per call, with "
          "plain arguments (no pipes, redirections, variables, globs or command substitution)"));
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  if (in_word) argv.push_back(std::move(word));
  if (argv.empty()) return absl::InvalidArgumentError("no program given");
  return argv;
}

absl::Status CheckProgram(const std::vector<std::string>& argv, const ShellOptions& options) {
  const std::string& program = argv[0];
  if (program.find('=') != std::string::npos) {
    return absl::PermissionDeniedError(
        absl::StrCat("\"", program, "\": setting environment variables is not allowed"));
  }
  if (program.find('/') != std::string::npos) {
    return absl::PermissionDeniedError(absl::StrCat(
        "\"", program,
        "\": name the program, not a path (allowed: ", absl::StrJoin(options.allow, ", "), ")"));
  }
  if (std::find(options.allow.begin(), options.allow.end(), program) == options.allow.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("\"", program, "\" is not an allowed program (policy.shell.allow: ",
                     absl::StrJoin(options.allow, ", "), ")"));
  }
  return absl::OkStatus();
}

namespace {

// Waits until `fd` is readable (true), or the deadline passes or `cancel` fires (false,
// with timed_out or cancelled set in `r`). Checks cancel every 100 ms.
bool WaitReadable(int fd, absl::Time deadline, const llm::CancelToken* cancel, ShellResult* r) {
  for (;;) {
    if (cancel != nullptr && cancel->cancelled()) {
      r->cancelled = true;
      return false;
    }
    int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) {
      r->timed_out = true;
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(wait_ms, 100))) > 0) return true;
  }
}

}  // namespace

absl::StatusOr<ShellResult> RunProgram(const std::vector<std::string>& argv,
                                       const std::string& workspace, const ShellOptions& options,
                                       const llm::CancelToken* cancel) {
  bool bwrap = options.sandbox != "off" && access(options.bwrap.c_str(), X_OK) == 0;
  if (options.sandbox == "required" && !bwrap) {
    return absl::FailedPreconditionError(
        absl::StrCat("policy.shell.sandbox is required but ", options.bwrap,
                     " is not there (Debian: apt-get install bubblewrap)"));
  }
  std::vector<std::string> full;
  if (bwrap) {
    // The system's programs and libraries, read-only — not all of /, which would show
    // other agents' workspaces, agentd's state and the user's home. Mounts apply in
    // order: the workspace last, so a private /tmp cannot hide it.
    full = {options.bwrap};
    for (const char* dir :
         {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}) {
      if (access(dir, F_OK) == 0) full.insert(full.end(), {"--ro-bind", dir, dir});
    }
    full.insert(full.end(), {"--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--bind",
                             workspace, workspace, "--setenv", "HOME", "/tmp"});
    // The network only when a person granted it for this call.
    if (!options.network) full.push_back("--unshare-net");
    full.insert(full.end(), {"--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                             "--chdir", workspace, "--"});
  }
  full.insert(full.end(), argv.begin(), argv.end());
  // The agent's environment holds its provider key: a program gets only the basics.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv = *e;
    for (absl::string_view keep : {"PATH=", "HOME=", "LANG=", "LC_", "TZ=", "USER=", "LOGNAME="}) {
      if (absl::StartsWith(kv, keep)) env.emplace_back(kv);
    }
  }
  env.insert(env.end(), options.env.begin(), options.env.end());
  std::vector<char*> cargv, cenv;
  for (auto& a : full) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
  posix_spawn_file_actions_addchdir_np(&fa, workspace.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return absl::NotFoundError(absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  ShellResult r;
  absl::Time deadline = absl::Now() + options.timeout;
  std::string kept;  // the end of the output, at most output_cap bytes
  char buf[16 << 10];
  while (WaitReadable(out[0], deadline, cancel, &r)) {
    ssize_t got = read(out[0], buf, sizeof(buf));
    if (got <= 0) break;  // EOF: every writer is gone
    kept.append(buf, static_cast<size_t>(got));
    r.output_bytes += static_cast<size_t>(got);
    if (kept.size() > 2 * options.output_cap) kept.erase(0, kept.size() - options.output_cap);
  }
  close(out[0]);
  // The output may end before the program does (it closed stdout): wait for the exit
  // within the same deadline, through a pidfd.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (!r.timed_out && !r.cancelled && pidfd >= 0) WaitReadable(pidfd, deadline, cancel, &r);
  // Its group goes too (what it left running in the background), before it is reaped so
  // that the group id cannot belong to anyone else yet.
  if (!r.timed_out && !r.cancelled && pidfd >= 0) {
    siginfo_t info{};
    waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
  }
  kill(-pid, SIGKILL);
  if (pidfd >= 0) close(pidfd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (kept.size() > options.output_cap) kept.erase(0, kept.size() - options.output_cap);
  r.output = std::move(kept);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.sandboxed = bwrap;
  return r;
}

namespace {

using nlohmann::json;

class ShellTool final : public Tool {
 public:
  std::string name() const override { return "shell.run"; }
  std::string description() const override {
    return "Run one allowed program in the workspace, without a shell: give argv (program and "
           "arguments) or a simple command line. No pipes, redirections or variables; no "
           "network. Output is the program's stdout and stderr.";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"argv",
               {{"type", "array"},
                {"items", {{"type", "string"}}},
                {"description", "Program and arguments, e.g. [\"make\", \"test\"]"}}},
              {"command", {{"type", "string"}, {"description", "Or: a command line"}}},
              {"network",
               {{"type", "boolean"},
                {"description", "The program needs the network: a person is asked first"}}},
              {"timeout_seconds", {{"type", "integer"}}}}}};
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    absl::StatusOr<std::vector<std::string>> argv =
        args.contains("argv") ? args["argv"].get<std::vector<std::string>>()
                              : ParseCommand(args.value("command", ""));
    if (argv.ok() && argv->empty()) argv = absl::InvalidArgumentError("argv is empty");
    if (!argv.ok()) return {absl::StrCat("shell.run: ", argv.status().message()), true};
    ShellOptions options = *ctx.shell;
    std::string line = absl::StrJoin(*argv, " ");
    if (absl::Status s = CheckProgram(*argv, *ctx.shell); !s.ok()) {
      // A plain program name off the allowlist is a person's call; a path or an
      // environment assignment is refused outright.
      bool askable =
          (*argv)[0].find('/') == std::string::npos && (*argv)[0].find('=') == std::string::npos;
      if (!askable || ctx.consent == nullptr) {
        return {absl::StrCat("shell.run: ", s.message()), true};
      }
      absl::StatusOr<bool> ok = ctx.consent->Ask(
          {"shell.run",
           ConsentKind::kCommandNotAllowed,
           absl::StrCat("run `", line, "` (", (*argv)[0], " is not on the allowlist)"),
           {{"argv", line}, {"program", (*argv)[0]}},
           ctx.call_id + "/program"},
          ctx.cancel);
      if (!ok.ok() || !*ok) {
        return {absl::StrCat("shell.run: ", s.message(), "; ",
                             ok.ok() ? "a person denied running it" : ok.status().message()),
                true};
      }
    }
    if (args.value("network", false)) {
      if (ctx.consent == nullptr) {
        return {"shell.run: network access needs a person's consent, which cannot be asked here",
                true};
      }
      absl::StatusOr<bool> ok =
          ctx.consent->Ask({"shell.run",
                            ConsentKind::kNetwork,
                            absl::StrCat("run `", line, "` with network access"),
                            {{"argv", line}},
                            ctx.call_id + "/network"},
                           ctx.cancel);
      if (!ok.ok() || !*ok) {
        return {absl::StrCat("shell.run: network access for `", line, "` was not granted: ",
                             ok.ok() ? "a person denied it" : ok.status().message()),
                true};
      }
      options.network = true;
    }
    if (args.contains("timeout_seconds")) {
      options.timeout =
          std::min(options.timeout, absl::Seconds(std::max<int64_t>(1, args["timeout_seconds"])));
    }
    absl::StatusOr<ShellResult> r = RunProgram(*argv, ctx.workspace->root(), options, ctx.cancel);
    if (!r.ok()) return {absl::StrCat("shell.run: ", r.status().message()), true};
    std::string head;
    if (r->timed_out) {
      head = absl::StrCat("timed out after ", absl::FormatDuration(options.timeout), ": killed");
    } else if (r->cancelled) {
      head = "cancelled: killed";
    } else if (r->signal != 0) {
      head = absl::StrCat("killed by signal ", r->signal);
    } else {
      head = absl::StrCat("exit code ", r->exit_code);
    }
    if (!r->sandboxed && ctx.shell->sandbox != "off") {
      // Said every time: `auto` on a machine without bubblewrap runs programs unconfined.
      absl::StrAppend(&head, " (not sandboxed: ", ctx.shell->bwrap, " is missing)");
    }
    if (r->output_bytes > r->output.size()) {
      absl::StrAppend(&head, " (output: the last ", r->output.size(), " of ", r->output_bytes,
                      " bytes)");
    }
    return {absl::StrCat(head, "\n", r->output), r->timed_out || r->cancelled};
  }
};

}  // namespace

std::unique_ptr<Tool> NewShellTool() { return std::make_unique<ShellTool>(); }

}  // namespace agentd::tools
