#include "tests/support/daemon.h"

#include <signal.h>

#include <sys/wait.h>

#include "absl/strings/ascii.h"
#include "agentd/v1/system.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"

namespace agentd::testing {

std::string AgentdBinary() { return AGENTD_BINARY; }
std::string AgentctlBinary() { return AGENTCTL_BINARY; }
std::string AgentBinary() { return AGENTD_AGENT_BINARY; }
std::string BufBinary() { return AGENTD_BUF_BINARY; }
std::string HelperBinary(const std::string& name) {
  return std::string(AGENTD_HELPERS_DIR) + "/" + name;
}

Daemon::~Daemon() {
  if (process_ != nullptr) {
    if (process_->running() && !Stop(absl::Seconds(30)).has_value()) {
      ADD_FAILURE() << "agentd did not exit within "
                    << absl::FormatDuration(Scaled(absl::Seconds(30))) << " of SIGTERM; its log:\n"
                    << log();
      process_->Signal(SIGKILL);
      process_->WaitExit(absl::Seconds(10));
    } else {
      CheckExit(*process_);
    }
  }
  FailOnSanitizerReports();
}

void Daemon::CheckExit(Subprocess& process) {
  std::optional<int> status = process.WaitExit(absl::ZeroDuration());
  if (expect_unclean_exit_ || !status.has_value()) return;
  // agentd answers SIGTERM (Stop's) with a clean exit; death by a signal the test sent
  // (kill -9) was the test's own doing.
  bool clean = WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
  bool killed_by_test =
      WIFSIGNALED(*status) && WTERMSIG(*status) != SIGTERM && process.sent(WTERMSIG(*status));
  if (!clean && !killed_by_test) {
    ADD_FAILURE() << "agentd (pid " << process.pid() << ") " << DescribeWaitStatus(status)
                  << ", not 0; its log:\n"
                  << log();
  }
}

void Daemon::Spawn(const std::vector<std::string>& extra_args,
                   const std::vector<std::string>& env) {
  // A daemon this one replaces has ended (the test stopped or killed it): check it now.
  if (process_ != nullptr && !process_->running()) CheckExit(*process_);
  std::vector<std::string> argv = {AgentdBinary(), "--state-dir", state_dir(), "--socket",
                                   socket(),       "--http",      ""};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // Every test's daemon is strict: it refuses to record an event kind
  // manager/store/event_kinds.h does not declare (an emitted kind missing from the
  // documented list fails the test), and stops at a task transition outside the status
  // machine (manager/core/task_status.h).
  std::vector<std::string> full_env = {"AGENTD_STRICT=1"};
  full_env.insert(full_env.end(), env.begin(), env.end());
  process_ =
      std::make_unique<Subprocess>(argv, dir_.Join("agentd.out"), dir_.Join("agentd.err"), full_env,
                                   std::vector<std::string>{"NOTIFY_SOCKET", "WATCHDOG_USEC"});
}

bool Daemon::Start(const std::vector<std::string>& extra_args,
                   const std::vector<std::string>& env) {
  Spawn(extra_args, env);
  return WaitReady();
}

bool Daemon::WaitReady(absl::Duration timeout) {
  return WaitFor(
             [&] {
               if (!process_->running()) return true;  // reported below
               // Serving, as the daemon itself says: the socket accepts calls a moment
               // before start-up is complete (state STARTING).
               auto stub = v1::SystemService::NewStub(UnixChannel());
               grpc::ClientContext ctx;
               ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
               v1::GetInfoResponse resp;
               return stub->GetInfo(&ctx, v1::GetInfoRequest(), &resp).ok() &&
                      resp.state() == v1::DAEMON_STATE_SERVING;
             },
             timeout) &&
         process_->running();
}

std::optional<int> Daemon::Stop(absl::Duration timeout) {
  process_->Signal(SIGTERM);
  return process_->WaitExit(timeout);
}

std::shared_ptr<grpc::Channel> Daemon::UnixChannel() const {
  return grpc::CreateChannel("unix:" + socket(), grpc::InsecureChannelCredentials());
}

std::string Daemon::admin_token() const {
  return std::string(absl::StripAsciiWhitespace(ReadFileOrEmpty(state_dir() + "/admin.token")));
}

}  // namespace agentd::testing
