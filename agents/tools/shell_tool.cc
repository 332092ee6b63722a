// shell.run: one program of the allowlist, run with arguments and no shell at all, in the
// workspace, with a timeout and an output cap — inside bubblewrap (read-only system, the
// workspace writable but its .git read-only, no network, own pid namespace, no
// capabilities) unless policy.shell.sandbox is off or, for auto, the sandbox does not work.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agents/tools/shell.h"
#include "agents/tools/tool.h"
#include "common/text.h"

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

std::string FindProgram(const std::string& program) {
  if (program.empty()) return "";
  if (program.find('/') != std::string::npos) {
    return access(program.c_str(), X_OK) == 0 ? program : "";
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", program);
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

std::string SandboxNote(const ShellResult& r) {
  if (r.sandboxed || r.unconfined_why.empty()) return "";
  return absl::StrCat(" [NOT SANDBOXED: ", r.unconfined_why,
                      "; policy.shell.sandbox is auto, so it ran unconfined]");
}

namespace {

// bubblewrap's arguments for a program in `workspace`, up to and including "--".
std::vector<std::string> BwrapArgs(const std::string& bwrap, const std::string& workspace,
                                   const ShellOptions& options) {
  // The system's programs and libraries, read-only — not all of /, which would show
  // other agents' workspaces, agentd's state and the user's home. Mounts apply in
  // order: the workspace after the private /tmp, so that the tmpfs cannot hide it.
  std::vector<std::string> a = {bwrap};
  for (const char* dir :
       {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}) {
    if (access(dir, F_OK) == 0) a.insert(a.end(), {"--ro-bind", dir, dir});
  }
  a.insert(a.end(), {"--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
  for (const std::string& dir : options.read_only_binds) {
    a.insert(a.end(), {"--ro-bind", dir, dir});
  }
  for (const std::string& dir : options.writable_binds) a.insert(a.end(), {"--bind", dir, dir});
  a.insert(a.end(), {"--bind", workspace, workspace});
  if (!options.git_writable) {
    // The repository's files read-only, bound over the writable workspace: a program can
    // neither write .git/config (core.fsmonitor, hooks…) nor replace a worktree's gitdir
    // file. A symlink named .git is left alone: binding it would follow it.
    std::string git = absl::StrCat(workspace, "/.git");
    struct stat st {};
    if (lstat(git.c_str(), &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
      a.insert(a.end(), {"--ro-bind", git, git});
    }
  }
  a.insert(a.end(), {"--setenv", "HOME", "/tmp"});
  // The network only when a person granted it for this call.
  if (!options.network) a.push_back("--unshare-net");
  // No capabilities: run as root, bwrap would otherwise leave the program all of them,
  // and CAP_SYS_ADMIN could remount what is bound read-only.
  a.insert(a.end(), {"--unshare-pid", "--unshare-ipc", "--cap-drop", "ALL", "--die-with-parent",
                     "--new-session", "--chdir", workspace, "--"});
  return a;
}

}  // namespace

absl::StatusOr<SandboxedCommand> SandboxCommand(const std::vector<std::string>& argv,
                                                const std::string& workspace,
                                                const ShellOptions& options) {
  SandboxedCommand c;
  // Whether the sandbox is used, or why not.
  std::string bwrap;
  if (options.sandbox != "off") {
    if (!options.sandbox_broken.empty()) {
      c.unconfined_why =
          absl::StrCat("the sandbox does not work on this machine: ", options.sandbox_broken);
    } else if (bwrap = FindProgram(options.bwrap); bwrap.empty()) {
      c.unconfined_why = absl::StrCat(options.bwrap,
                                      " (bubblewrap) is not there (Debian: apt-get install "
                                      "bubblewrap)");
    }
    if (!c.unconfined_why.empty() && options.sandbox == "required") {
      return absl::FailedPreconditionError(absl::StrCat("policy.shell.sandbox is required but ",
                                                        c.unconfined_why, ", so nothing was run"));
    }
  }
  if (!bwrap.empty()) c.argv = BwrapArgs(bwrap, workspace, options);
  c.sandboxed = !bwrap.empty();
  c.argv.insert(c.argv.end(), argv.begin(), argv.end());
  // The agent's environment holds its provider key: a program gets only the basics.
  std::vector<absl::string_view> keep = {"PATH=", "LANG=", "LC_", "TZ="};
  if (options.inherit_env) keep.insert(keep.end(), {"HOME=", "USER=", "LOGNAME="});
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv = *e;
    for (absl::string_view k : keep) {
      if (absl::StartsWith(kv, k)) c.env.emplace_back(kv);
    }
  }
  c.env.insert(c.env.end(), options.env.begin(), options.env.end());
  return c;
}

absl::StatusOr<ShellResult> RunProgram(const std::vector<std::string>& argv,
                                       const std::string& workspace, const ShellOptions& options,
                                       const llm::CancelToken* cancel) {
  absl::StatusOr<SandboxedCommand> cmd = SandboxCommand(argv, workspace, options);
  if (!cmd.ok()) return cmd.status();
  std::vector<std::string>& full = cmd->argv;
  std::vector<std::string>& env = cmd->env;
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
    if (kept.size() > 2 * options.output_cap) {
      kept.erase(0, Utf8SuffixStart(kept, options.output_cap));  // on a character boundary
    }
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
  kept.erase(0, Utf8SuffixStart(kept, options.output_cap));
  r.output = std::move(kept);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.sandboxed = cmd->sandboxed;
  r.unconfined_why = cmd->unconfined_why;
  return r;
}

SandboxProbe ProbeSandbox(const std::string& bwrap, const SandboxTrial& run) {
  SandboxProbe probe;
  probe.bwrap = FindProgram(bwrap);
  if (probe.bwrap.empty()) {
    probe.why = absl::StrCat(bwrap,
                             " (bubblewrap) is not on PATH (Debian: apt-get install "
                             "bubblewrap)");
    return probe;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string scratch =
      absl::StrCat(tmp != nullptr && *tmp != 0 ? tmp : "/tmp", "/agentd-sandbox-probe-XXXXXX");
  if (mkdtemp(scratch.data()) == nullptr) {
    probe.why =
        absl::StrCat("cannot make a scratch directory to try it in: ", std::strerror(errno));
    return probe;
  }
  ShellOptions o;
  o.sandbox = "required";
  o.bwrap = probe.bwrap;
  o.timeout = absl::Seconds(20);
  o.inherit_env = false;
  if (run) {
    absl::StatusOr<SandboxedCommand> cmd = SandboxCommand({"true"}, scratch, o);
    absl::Status tried = cmd.ok() ? run(*cmd) : cmd.status();
    rmdir(scratch.c_str());
    probe.works = tried.ok();
    if (!tried.ok()) probe.why = std::string(tried.message());
    return probe;
  }
  absl::StatusOr<ShellResult> r = RunProgram({"true"}, scratch, o, nullptr);
  rmdir(scratch.c_str());
  if (!r.ok()) {
    probe.why = std::string(r.status().message());
  } else if (r->exit_code != 0 || !r->sandboxed) {
    std::string said(absl::StripAsciiWhitespace(r->output));
    probe.why =
        absl::StrCat("a trial run of ", probe.bwrap, " failed (",
                     r->timed_out ? "timed out" : absl::StrCat("exit code ", r->exit_code), ")",
                     said.empty() ? "" : absl::StrCat(": ", said.substr(0, said.find('\n'))));
  } else {
    probe.works = true;
  }
  return probe;
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
    // The words exactly, for the consent a person decides on (agentd shows them quoted).
    std::string argv_json = json(*argv).dump(-1, ' ', false, json::error_handler_t::replace);
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
           {{"argv", argv_json}, {"program", (*argv)[0]}},
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
                            {{"argv", argv_json}},
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
    // Said every time: `auto` on a machine without a working sandbox runs programs
    // unconfined.
    absl::StrAppend(&head, SandboxNote(*r));
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
