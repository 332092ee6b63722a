#include "manager/core/system.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config_view.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/version.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
SystemCore::SystemCore(EventLoop* loop, Store* store, ConfigState* config, absl::Time start_time)
    : loop_(loop), store_(store), config_(config), start_time_(start_time) {}

void SystemCore::Serve(v1::DaemonPaths paths) {
  loop_->Post([this, paths = std::move(paths)]() mutable {
    paths_ = std::move(paths);
    v1::DaemonState starting = v1::DAEMON_STATE_STARTING;
    state_.compare_exchange_strong(starting, v1::DAEMON_STATE_SERVING);  // not over FAILED
  });
}

v1::GetVersionResponse SystemCore::Version() {
  v1::GetVersionResponse v;
  v.set_version(kVersion);
  v.set_git_revision(kGitRevision);
  v.set_api_version(kApiVersion);
  v.set_build_type(kBuildType);
  return v;
}

void SystemCore::FillLive(v1::GetInfoResponse* r) const {
  absl::Duration up = loop_->clock()->Now() - start_time_;
  r->mutable_uptime()->set_seconds(absl::ToInt64Seconds(up));
  r->mutable_uptime()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(up - absl::Seconds(absl::ToInt64Seconds(up)))));
  r->set_state(state_.load());
  {
    absl::MutexLock l(&failure_mu_);
    r->set_failure(failure_);
  }
  v1::DaemonCounters* c = r->mutable_counters();
  c->set_rpcs_served(rpcs_served_.load(std::memory_order_relaxed));
  if (live_counters_source_) live_counters_source_(c);
}

void SystemCore::GetInfo(absl::AnyInvocable<void(v1::GetInfoResponse) &&> done) {
  std::shared_ptr<const InfoSnapshot> snapshot;
  {
    absl::MutexLock l(&snapshot_mu_);
    snapshot = snapshot_;
  }
  if (snapshot != nullptr && snapshot->step == loop_->steps()) {
    v1::GetInfoResponse r = snapshot->info;
    FillLive(&r);
    std::move(done)(std::move(r));
    return;
  }
  loop_->Post([this, done = std::move(done)]() mutable {
    auto made = std::make_shared<InfoSnapshot>();
    made->step = loop_->steps();
    v1::GetInfoResponse& r = made->info;
    *r.mutable_version() = Version();
    r.set_pid(getpid());
    SetTime(start_time_, r.mutable_start_time());
    *r.mutable_paths() = paths_;
    SetTime(config_->loaded_time(), r.mutable_config_loaded_time());
    r.set_schema_version(store_->schema_version());
    v1::DaemonCounters* c = r.mutable_counters();
    c->set_last_event_seq(store_->LastEventSeq());
    if (counters_source_) counters_source_(c);
    for (const auto& [name, role] : config_->config().roles) {
      v1::RoleSummary* s = r.add_roles();
      s->set_name(name);
      s->set_model(role.model);
      for (const std::string& tool : role.tools) s->add_tools(tool);
      s->set_max_instances(role.max_instances);
    }
    v1::GetInfoResponse answer = r;
    {
      absl::MutexLock l(&snapshot_mu_);
      snapshot_ = std::move(made);
    }
    FillLive(&answer);
    std::move(done)(std::move(answer));
  });
}

void SystemCore::Diagnose(absl::AnyInvocable<void(v1::DiagnoseResponse) &&> done) {
  loop_->Post([this, done = std::move(done)]() mutable {
    DoctorInputs in;
    if (doctor_source_) in = doctor_source_();
    in.config = config_->config();
    if (!in.env) in.env = ProcessEnv();
    // Providers are asked over the network: never on the loop.
    off_loop_.Run<v1::DiagnoseResponse>(
        [in = std::move(in)]() mutable {
          llm::CurlTransport transport;
          return agentd::Diagnose(in, transport);
        },
        std::move(done));
  });
}

void SystemCore::GetConfig(bool with_origins,
                           absl::AnyInvocable<void(v1::GetConfigResponse) &&> done) {
  loop_->Post([this, with_origins, done = std::move(done)]() mutable {
    v1::GetConfigResponse r;
    r.set_yaml(RenderConfigYaml(config_->config(), with_origins));
    for (const std::string& layer : config_->config().layers) r.add_layers(layer);
    SetTime(config_->loaded_time(), r.mutable_loaded_time());
    std::move(done)(std::move(r));
  });
}

void SystemCore::ReloadConfig(
    absl::AnyInvocable<void(absl::StatusOr<v1::ReloadConfigResponse>) &&> done, std::string by) {
  loop_->Post([this, done = std::move(done), by = std::move(by)]() mutable {
    absl::StatusOr<ReloadResult> r = config_->Reload();
    if (!r.ok()) {
      spdlog::error("configuration reload refused, the running configuration is unchanged:\n{}",
                    r.status().message());
      std::move(done)(absl::InvalidArgumentError(
          absl::StrCat("configuration not reloaded, nothing changed:\n", r.status().message())));
      return;
    }
    spdlog::info("configuration reloaded from {}; applied: [{}]; restart required: [{}]",
                 config_->file().empty() ? "<embedded default>" : config_->file(),
                 absl::StrJoin(r->applied, ", "), absl::StrJoin(r->restart_required, ", "));
    nlohmann::json payload = {{"file", config_->file()},
                              {"applied", r->applied},
                              {"restart_required", r->restart_required}};
    if (auto seq = store_->AppendEvent(loop_->clock()->Now(), "config.reloaded", DumpJson(payload));
        !seq.ok()) {
      spdlog::warn("recording the reload event: {}", seq.status().ToString());
    }
    if (audit_ != nullptr) {
      audit_->AppendBy(by, "config.reload",
                       config_->file().empty() ? "<embedded>" : config_->file());
    }
    if (on_reloaded_) on_reloaded_(*r);
    v1::ReloadConfigResponse resp;
    resp.set_config_file(config_->file());
    for (const auto& a : r->applied) resp.add_applied(a);
    for (const auto& a : r->restart_required) resp.add_restart_required(a);
    SetTime(config_->loaded_time(), resp.mutable_loaded_time());
    std::move(done)(std::move(resp));
  });
}

}  // namespace agentd
