#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"

extern char** environ;

namespace agentd::testing {

double TimeScale() {
  static const double scale = [] {
    const char* v = std::getenv("AGENTD_TEST_TIME_SCALE");
    double f = 1;
    if (v != nullptr && *v != '\0' && (!absl::SimpleAtod(v, &f) || !(f > 0) || f > 100)) {
      std::fprintf(stderr, "AGENTD_TEST_TIME_SCALE=%s is not a number in (0, 100]\n", v);
      std::abort();
    }
    return f;
  }();
  return scale;
}

absl::Duration Scaled(absl::Duration d) { return d * TimeScale(); }

TempDir::TempDir(bool keep_on_failure) : keep_on_failure_(keep_on_failure) {
  char tmpl[] = "/tmp/agentd-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (keep_on_failure_ && ::testing::Test::HasFailure()) {
    std::fprintf(stderr, "test support: the test failed; its files are kept in %s\n",
                 path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + Scaled(timeout);
  for (;;) {
    if (cond()) return true;
    if (absl::Now() >= deadline) return false;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(5));  // poll interval, not a wait for a result
  }
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ProcessGone(int64_t pid) {
  std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  return stat.empty() ||
         (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path);
}

Subprocess::Subprocess(const std::vector<std::string>& argv, const std::string& stdout_file,
                       const std::string& stderr_file, const std::vector<std::string>& env,
                       const std::vector<std::string>& unset_env) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const std::string& name : unset_env) vars.erase(name);
  for (const std::string& kv : env) {
    size_t eq = kv.find('=');
    vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> env_strings;
  // Sanitizer reports go to files the test support reads (see TakeSanitizerReports).
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    std::string& opts = vars[name];
    if (!opts.empty()) opts += ':';
    opts += "log_path=" + SanitizerReportDir() + "/report";
  }
  for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, stdout_file.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, stderr_file.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  // The child starts with no blocked signals whatever this test thread blocks.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  int rc = posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot spawn " + argv[0] + ": " + std::strerror(rc));
}

Subprocess::~Subprocess() {
  if (running()) {
    kill(pid_, SIGKILL);
    WaitExit(absl::Seconds(10));
  }
  FailOnSanitizerReports();
}

bool Subprocess::running() {
  if (status_.has_value()) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

void Subprocess::Signal(int sig) {
  if (running()) {
    if (sig > 0 && sig < 64) sent_ |= uint64_t{1} << sig;
    kill(pid_, sig);
  }
}

std::string DescribeWaitStatus(const std::optional<int>& status) {
  if (!status.has_value()) return "still running";
  if (WIFEXITED(*status)) return "exited with " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) {
    return "killed by signal " + std::to_string(WTERMSIG(*status)) + " (" +
           strsignal(WTERMSIG(*status)) + ")";
  }
  return "wait status " + std::to_string(*status);
}

const std::string& SanitizerReportDir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/agentd-sanitizer-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    return std::string(tmpl);
  }();
  return dir;
}

void FailOnSanitizerReports() {
  for (const std::string& report : TakeSanitizerReports()) {
    ADD_FAILURE() << "a sanitizer report from a process this test started:\n" << report;
  }
}

std::vector<std::string> TakeSanitizerReports() {
  std::vector<std::string> reports;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(SanitizerReportDir(), ec)) {
    std::string text = ReadFileOrEmpty(entry.path().string());
    std::filesystem::remove(entry.path(), ec);
    // A sanitizer may open its log file with nothing to report but the suppressions it
    // used (LSan's "Suppressions used:" table).
    if (text.find("ERROR: ") == std::string::npos &&
        text.find("runtime error: ") == std::string::npos &&
        text.find("SUMMARY: ") == std::string::npos) {
      continue;
    }
    reports.push_back("==== " + entry.path().filename().string() + " ====\n" + text);
  }
  return reports;
}

std::optional<int> Subprocess::WaitExit(absl::Duration timeout) {
  WaitFor([this] { return !running(); }, timeout);
  return status_;
}

RunResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                     const std::vector<std::string>& env) {
  TempDir dir(/*keep_on_failure=*/false);  // only the output, read below
  RunResult r;
  {
    Subprocess p(argv, dir.Join("out"), dir.Join("err"), env);
    std::optional<int> st = p.WaitExit(timeout);
    if (st.has_value() && WIFEXITED(*st)) r.exit_code = WEXITSTATUS(*st);
  }
  r.out = ReadFileOrEmpty(dir.Join("out"));
  r.err = ReadFileOrEmpty(dir.Join("err"));
  return r;
}

}  // namespace agentd::testing
