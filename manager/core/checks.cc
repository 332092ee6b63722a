#include "manager/core/checks.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "agents/llm/http.h"
#include "agents/tools/shell.h"
#include "common/text.h"
#include "manager/core/proto_time.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

constexpr size_t kCheckOutputBytes = 16 << 10;

}  // namespace

struct CheckRunner::Round {
  llm::CancelToken cancel;
  std::atomic<bool> dropped{false};
  std::atomic<bool> finished{false};  // its thread has nothing left to do: join is immediate
};

CheckRunner::CheckRunner(EventLoop* loop, Options options)
    : loop_(loop), options_(std::move(options)) {}

CheckRunner::~CheckRunner() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    for (auto& [key, round] : rounds_) {
      round->dropped = true;
      round->cancel.Cancel();
    }
    rounds_.clear();
    for (auto& [round, thread] : threads_) threads.push_back(std::move(thread));
    threads_.clear();
  }
  for (std::thread& t : threads) t.join();
}

void CheckRunner::SetOptions(Options options) {
  absl::MutexLock l(&mu_);
  options_ = std::move(options);
}

void CheckRunner::Cancel(const std::string& key) {
  absl::MutexLock l(&mu_);
  auto it = rounds_.find(key);
  if (it == rounds_.end()) return;
  it->second->dropped = true;
  it->second->cancel.Cancel();
  rounds_.erase(it);
}

void CheckRunner::Run(const std::string& key, const std::string& workspace,
                      std::vector<v1::GoalCheck> checks, Done done) {
  Cancel(key);
  auto round = std::make_shared<Round>();
  absl::MutexLock l(&mu_);
  // Threads of rounds that ended are joined here, so that they do not pile up.
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->first->finished) {
      it->second.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  rounds_[key] = round;
  tools::ShellOptions shell;
  // A check runs programs the agents wrote (a conftest.py, a Makefile), as agentd: never
  // unconfined unless a person said so (policy.shell.sandbox off). "auto" is "required"
  // here: without a working sandbox the check does not run.
  shell.sandbox = options_.sandbox == "off" ? "off" : "required";
  shell.sandbox_broken = options_.sandbox_broken;
  shell.bwrap = options_.bwrap;
  shell.timeout = options_.timeout;
  shell.inherit_env = false;
  shell.output_cap = kCheckOutputBytes;
  std::thread thread([this, key, workspace, checks = std::move(checks), done = std::move(done),
                      round, shell]() mutable {
    for (v1::GoalCheck& c : checks) {
      if (round->dropped) break;
      absl::StatusOr<tools::ShellResult> r =
          tools::RunProgram({"sh", "-c", c.command()}, workspace, shell, &round->cancel);
      c.set_passed(false);
      c.set_exit_code(-1);
      if (!r.ok()) {
        c.set_not_run(true);
        c.set_output(ValidUtf8(absl::StrCat("agentd could not run it: ", r.status().message())));
      } else {
        std::string out = Utf8Suffix(ValidUtf8(r->output), kCheckOutputBytes);
        if (r->timed_out) {
          absl::StrAppend(&out, "\n[agentd] stopped after ", absl::FormatDuration(shell.timeout),
                          " (policy.check_timeout)");
        } else if (r->signal != 0) {
          absl::StrAppend(&out, "\n[agentd] killed by signal ", r->signal);
        } else {
          c.set_exit_code(r->exit_code);
          c.set_passed(r->exit_code == 0);
        }
        absl::StrAppend(&out, tools::SandboxNote(*r));
        c.set_output(std::move(out));
      }
      SetTime(absl::Now(), c.mutable_run_time());
      spdlog::info("goal {}: check `{}` {} (exit {})", key, c.command(),
                   c.passed() ? "passed" : "failed", c.exit_code());
    }
    if (round->dropped) {
      round->finished = true;
      return;
    }
    loop_->Post([this, key, round, checks = std::move(checks), done = std::move(done)]() mutable {
      if (round->dropped) return;  // canceled, or the runner is gone: `this` is not touched
      {
        absl::MutexLock held(&mu_);
        auto it = rounds_.find(key);
        if (it == rounds_.end() || it->second != round) return;  // canceled or replaced
        rounds_.erase(it);
      }
      done(std::move(checks));
    });
    round->finished = true;
  });
  threads_.emplace_back(round, std::move(thread));
}

std::string ChecksFailedText(const std::vector<v1::GoalCheck>& checks, int round, int max_rounds) {
  std::string text =
      absl::StrCat("[agentd] The goal is not complete: agentd ran its checks in the workspace and ",
                   "these failed (round ", round, " of ", max_rounds, "):\n");
  for (const v1::GoalCheck& c : checks) {
    if (c.passed()) continue;
    absl::StrAppend(&text, "\n$ ", c.command(), "\n",
                    c.exit_code() >= 0 ? absl::StrCat("exit code ", c.exit_code())
                                       : std::string("did not finish"),
                    "; the end of its output:\n", Utf8Suffix(c.output(), 4 << 10), "\n");
  }
  absl::StrAppend(&text,
                  "\nFix what they found (delegate the work if your role does not do it "
                  "yourself), then call complete_task again; agentd runs the checks again "
                  "then.");
  return text;
}

}  // namespace agentd
