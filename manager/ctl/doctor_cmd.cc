#include "manager/ctl/doctor_cmd.h"

#include <cstdio>
#include <string>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/system.grpc.pb.h"
#include "manager/ctl/connection.h"
#include "manager/ctl/output.h"

namespace agentd::ctl {
namespace {

const char* Mark(v1::DiagnosisStatus s) {
  switch (s) {
    case v1::DIAGNOSIS_STATUS_OK:
      return "ok";
    case v1::DIAGNOSIS_STATUS_WARNING:
      return "warn";
    case v1::DIAGNOSIS_STATUS_FAILED:
      return "FAIL";
    default:
      return "?";
  }
}

int Doctor(const Globals& g, const NoOpts&) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) {
    return Fail(absl::StrCat(c.status().message(),
                             "\nagentd is not running (or not at this socket): start it with "
                             "`agentd`, `systemctl --user start agentd` or `dev/run`, then run "
                             "agentctl doctor again"),
                kNoConnection);
  }
  auto stub = v1::SystemService::NewStub(c->channel());
  v1::DiagnoseResponse r;
  // The providers are asked over the network, each within 5 s, all at once.
  std::unique_ptr<grpc::ClientContext> ctx = c->NewContext(/*deadline=*/false);
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  grpc::Status s = stub->Diagnose(ctx.get(), v1::DiagnoseRequest(), &r);
  if (!s.ok()) return RpcFailed("Diagnose", s);
  if (g.format != Format::kTable) {
    Print(g, r, "");
  } else {
    size_t width = 0;
    for (const v1::Diagnosis& d : r.checks()) width = std::max(width, d.name().size());
    int failed = 0, warned = 0;
    for (const v1::Diagnosis& d : r.checks()) {
      failed += d.status() == v1::DIAGNOSIS_STATUS_FAILED;
      warned += d.status() == v1::DIAGNOSIS_STATUS_WARNING;
      std::string name = TerminalText(d.name());
      std::printf("%-4s  %-*s  %s\n", Mark(d.status()), static_cast<int>(width), name.c_str(),
                  TerminalText(d.detail()).c_str());
      if (!d.remedy().empty()) {
        std::printf("%-4s  %-*s  -> %s\n", "", static_cast<int>(width), "",
                    TerminalText(d.remedy()).c_str());
      }
    }
    if (r.goal_can_run()) {
      std::printf("\na goal can run%s\n",
                  warned ? absl::StrCat(" (", warned, " warnings)").c_str() : "");
    } else {
      std::printf("\na goal cannot run: %d checks failed\n", failed);
    }
  }
  return r.goal_can_run() ? kOk : kFailed;
}

}  // namespace

void AddDoctorCommands(const CommandTree& t) {
  CLI::App* cmd = AddCommand(
      t.root, "doctor", "check that a goal could run, and say what to fix",
      "agentd checks, from where it runs and with its environment: each provider a role\n"
      "uses (reachable; its key variable set; each configured model served, from\n"
      "/v1/models or Ollama's /api/tags), the shell sandbox, agent isolation, cgroups,\n"
      "the listeners and the state directory's free space. Each failure comes with\n"
      "what to do. Exit 0 when a goal can run (warnings allowed), 1 when a check\n"
      "failed, 3 when agentd is not reachable.\n\n"
      "Examples:\n  agentctl doctor\n  agentctl doctor -o json | jq '.checks[] | "
      "select(.status != \"DIAGNOSIS_STATUS_OK\")'");
  OnRun(t, cmd, Doctor);
}

}  // namespace agentd::ctl
