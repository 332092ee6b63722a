// tests.run: the workspace's tests — its configured command, or the runner its files
// show (ctest for a CMake build tree, pytest, npm test, go test, cargo test) — with the
// passed, failed and skipped counts and the failing tests' names from the runner's JUnit
// report where it writes one.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agents/tools/junit.h"
#include "agents/tools/shell.h"
#include "agents/tools/tool.h"

namespace agentd::tools {
namespace {

using nlohmann::json;

// Inside the workspace (the sandbox's /tmp is private), removed after reading.
constexpr char kJunit[] = ".agentd-junit.xml";

// The report's bound: a JUnit file of a large suite is some megabytes.
constexpr size_t kMaxReport = 16 << 20;

// Reads the runner's report and removes it. What is not a regular file there (a FIFO a
// test planted, say) is not read: the counts then come from the exit code.
std::string ReadAndRemove(const Workspace& ws, const std::string& path) {
  absl::StatusOr<FileData> data = ws.ReadFile(path, kMaxReport);
  (void)ws.Remove(path);
  return data.ok() && !data->truncated ? data->bytes : "";
}

struct Runner {
  std::string name;
  std::vector<std::string> argv;
  bool junit = false;
};

// The runner the workspace's files call for, or a name of "" when none fits; an error
// when a file that would choose the runner is not a regular file (a FIFO named
// pytest.ini would hang the runner that reads it: it is not run at all).
absl::StatusOr<Runner> Detect(const Workspace& ws) {
  const std::string junit = absl::StrCat(ws.root(), "/", kJunit);
  auto present = [&](const std::string& path) -> absl::StatusOr<bool> {
    std::string kind = ws.KindOf(path);
    if (kind == "missing") return false;
    if (kind == "a regular file") return true;
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is ", kind, ", not a regular file: no test runner is started on it"));
  };
  for (const char* dir : {"build", "."}) {
    absl::StatusOr<bool> p = present(absl::StrCat(dir, "/CTestTestfile.cmake"));
    if (!p.ok()) return p.status();
    if (*p) {
      return Runner{"ctest",
                    {"ctest", "--test-dir", dir, "--output-on-failure", "--output-junit", junit},
                    true};
    }
  }
  for (const char* f : {"pytest.ini", "conftest.py", "pyproject.toml", "setup.cfg", "tox.ini",
                        "tests/__init__.py", "tests/conftest.py"}) {
    // `pytest` itself rather than `python3 -m pytest`: its own interpreter is the one it
    // was installed for (a venv's, or the system's), whichever python3 PATH finds.
    absl::StatusOr<bool> p = present(f);
    if (!p.ok()) return p.status();
    if (*p) return Runner{"pytest", {"pytest", "-q", "--junitxml", junit}, true};
  }
  for (const char* f : {"package.json", "go.mod", "Cargo.toml"}) {
    absl::StatusOr<bool> p = present(f);
    if (!p.ok()) return p.status();
    if (!*p) continue;
    if (std::string(f) == "package.json") return Runner{"npm", {"npm", "test"}, false};
    if (std::string(f) == "go.mod") return Runner{"go", {"go", "test", "./..."}, false};
    return Runner{"cargo", {"cargo", "test"}, false};
  }
  return Runner{};
}

class TestsTool final : public Tool {
 public:
  std::string name() const override { return "tests.run"; }
  std::string description() const override {
    return "Run the workspace's tests; answers how many passed, failed and were skipped, the "
           "failing tests' names and the end of the output.";
  }
  json schema() const override { return {{"type", "object"}, {"properties", json::object()}}; }
  bool side_effect() const override { return true; }  // builds and test runs write files
  ToolResult Run(const json&, const ToolContext& ctx) const override {
    Runner runner;
    if (!ctx.shell->test_command.empty()) {
      runner = {"configured", ctx.shell->test_command, false};
    } else {
      absl::StatusOr<Runner> found = Detect(*ctx.workspace);
      if (!found.ok()) return {absl::StrCat("tests.run: ", found.status().message()), true};
      runner = *std::move(found);
    }
    if (runner.argv.empty()) {
      return {
          "no tests found: no CMake build tree (CTestTestfile.cmake), pytest configuration, "
          "package.json, go.mod or Cargo.toml in the workspace",
          true};
    }
    // Agents rewrite files faster than the clock's second: a .pyc whose source changed
    // within the same second and kept its size would be taken as fresh, and the old code
    // tested. No bytecode is written, so none is ever stale.
    ShellOptions options = *ctx.shell;
    options.env.push_back("PYTHONDONTWRITEBYTECODE=1");
    // A report left from before (or planted) is not taken for this run's.
    if (runner.junit) (void)ctx.workspace->Remove(kJunit);
    absl::StatusOr<ShellResult> r =
        RunProgram(runner.argv, ctx.workspace->root(), options, ctx.cancel);
    std::string report = runner.junit ? ReadAndRemove(*ctx.workspace, kJunit) : "";
    if (!r.ok()) return {absl::StrCat("tests.run: ", r.status().message()), true};
    std::string head;
    if (r->timed_out) {
      head = absl::StrCat("tests timed out after ", absl::FormatDuration(ctx.shell->timeout));
    } else if (absl::StatusOr<TestCounts> c = ParseJunit(report); c.ok()) {
      head = absl::StrCat(c->passed, " passed, ", c->failed, " failed, ", c->skipped, " skipped (",
                          runner.name, ")");
      if (!c->failing.empty())
        absl::StrAppend(&head, "\nfailing: ", absl::StrJoin(c->failing, ", "));
    } else {
      head = absl::StrCat(runner.name, ": exit code ", r->exit_code,
                          r->exit_code == 0 ? " (passed)" : " (failed)");
    }
    absl::StrAppend(&head, SandboxNote(*r));
    return {absl::StrCat(head, "\n", r->output), r->timed_out};
  }
};

}  // namespace

std::unique_ptr<Tool> NewTestsTool() { return std::make_unique<TestsTool>(); }

}  // namespace agentd::tools
