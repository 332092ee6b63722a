#include "ui/desktop/daemon_link.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "manager/ctl/connection.h"

namespace agentd::desktop {
namespace {

constexpr absl::Duration kCallDeadline = absl::Seconds(3);
// Lists are paged; a person has at most a handful pending, so a few pages are plenty and
// a daemon answering with endless pages cannot keep the link busy.
constexpr int kMaxPages = 20;
// GetInfo failures in a row before agentd counts as stopped: one slow answer (a busy
// store, a loaded machine) is not a stop.
constexpr int kFailuresToDown = 2;

std::string StateName(v1::DaemonState s) {
  std::string name = v1::DaemonState_Name(s);
  if (absl::StartsWith(name, "DAEMON_STATE_")) name = name.substr(13);
  return absl::AsciiStrToLower(name);
}

}  // namespace

bool DaemonStatus::operator==(const DaemonStatus& o) const {
  return running == o.running && untrusted == o.untrusted && reason == o.reason && pid == o.pid &&
         version == o.version && state == o.state && http == o.http && agents == o.agents &&
         active_goals == o.active_goals && login_url == o.login_url && login_error == o.login_error;
}

DaemonLink::DaemonLink(std::string socket, Callbacks callbacks, absl::Duration poll)
    : socket_(std::move(socket)), callbacks_(std::move(callbacks)), poll_(poll) {}

DaemonLink::~DaemonLink() { Stop(); }

void DaemonLink::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DaemonLink::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

void DaemonLink::RequestLogin() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    login_requested_ = true;
    poked_ = true;
  }
  cv_.notify_all();
}

void DaemonLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (feed_context_) feed_context_->TryCancel();
    if (call_context_) call_context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<grpc::ClientContext> DaemonLink::Call() {
  auto ctx = std::make_shared<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return nullptr;
  call_context_ = ctx;
  return ctx;
}

bool DaemonLink::stopped() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

bool DaemonLink::Wait(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(d), [this] { return stop_ || poked_; });
  poked_ = false;
  return !stop_;
}

void DaemonLink::Report(const DaemonStatus& status) {
  if (have_last_ && status == last_) return;
  have_last_ = true;
  last_ = status;
  std::lock_guard<std::mutex> lock(callback_mu_);
  if (callbacks_.on_status) callbacks_.on_status(status);
}

void DaemonLink::Run() {
  do {
    DaemonStatus down;
    if (absl::Status trust = ctl::CheckSocketTrust(socket_); !trust.ok()) {
      // No socket at all is the everyday "not running"; an untrusted one says why.
      down.untrusted = !absl::IsUnavailable(trust);
      down.reason = down.untrusted ? std::string(trust.message())
                                   : absl::StrCat("no agentd listens on ", socket_);
      Report(down);
      continue;
    }
    auto channel =
        grpc::CreateChannel(absl::StrCat("unix:", socket_), grpc::InsecureChannelCredentials());
    auto system = v1::SystemService::NewStub(channel);
    v1::GetInfoResponse info;
    std::shared_ptr<grpc::ClientContext> ctx = Call();
    if (ctx == nullptr) break;
    grpc::Status s = system->GetInfo(ctx.get(), v1::GetInfoRequest(), &info);
    if (!s.ok()) {
      down.reason = absl::StrCat("agentd does not answer on ", socket_, ": ", s.error_message());
      Report(down);
      continue;
    }
    DaemonStatus up;
    up.running = true;
    up.pid = info.pid();
    up.version = info.version().version();
    up.state = StateName(info.state());
    up.http = info.paths().http();
    up.agents = info.counters().agents();
    up.active_goals = info.counters().active_goals();
    Connected(channel, std::move(up), info.counters().last_event_seq());
  } while (Wait(poll_));
}

void DaemonLink::Connected(const std::shared_ptr<grpc::Channel>& channel, DaemonStatus status,
                           int64_t after_seq) {
  auto system = v1::SystemService::NewStub(channel);
  const int64_t pid = status.pid;
  // A login link the first time agentd answers, and whenever the owner asks (the UI
  // shows its login page: the session expired or was revoked, or another agentd answers
  // now). Not after every stall or restart: web sessions outlive both, and a new login
  // would reload the UI and lose what a person was doing in it.
  auto with_login = [&](DaemonStatus st) {
    bool requested;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requested = login_requested_;
      login_requested_ = false;
    }
    if ((logged_in_ && !requested) || st.http.empty()) return st;
    std::shared_ptr<grpc::ClientContext> ctx = Call();
    if (ctx == nullptr) return st;
    v1::CreateLoginCodeResponse code;
    grpc::Status s = system->CreateLoginCode(ctx.get(), v1::CreateLoginCodeRequest(), &code);
    if (s.ok()) {
      st.login_url = code.url();
      logged_in_ = true;
    } else {
      st.login_error = absl::StrCat("CreateLoginCode: ", s.error_message());
    }
    return st;
  };
  Report(with_login(status));

  // What is pending now, then every change after the feed position GetInfo gave (taken
  // before these lists, so nothing falls between them; a request in both is reported
  // twice, which callers expect).
  {
    auto consent = v1::ConsentService::NewStub(channel);
    v1::ListConsentRequestsRequest req;
    for (int page = 0; page < kMaxPages && !stopped(); ++page) {
      v1::ListConsentRequestsResponse resp;
      std::shared_ptr<grpc::ClientContext> ctx = Call();
      if (ctx == nullptr || !consent->ListConsentRequests(ctx.get(), req, &resp).ok()) break;
      std::lock_guard<std::mutex> lock(callback_mu_);
      for (const v1::ConsentRequest& c : resp.consent_requests()) {
        if (callbacks_.on_consent) callbacks_.on_consent(c);
      }
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    auto plans = v1::PlanService::NewStub(channel);
    v1::ListPlansRequest preq;
    preq.add_statuses(v1::PLAN_STATUS_PROPOSED);
    for (int page = 0; page < kMaxPages && !stopped(); ++page) {
      v1::ListPlansResponse resp;
      std::shared_ptr<grpc::ClientContext> ctx = Call();
      if (ctx == nullptr || !plans->ListPlans(ctx.get(), preq, &resp).ok()) break;
      std::lock_guard<std::mutex> lock(callback_mu_);
      for (const v1::Plan& p : resp.plans()) {
        if (callbacks_.on_plan) callbacks_.on_plan(p);
      }
      if (resp.next_page_token().empty()) break;
      preq.set_page_token(resp.next_page_token());
    }
  }

  std::thread feed([this, channel, after_seq] { FollowFeed(channel, after_seq); });
  int failures = 0;
  while (Wait(poll_)) {
    v1::GetInfoResponse info;
    std::shared_ptr<grpc::ClientContext> ctx = Call();
    if (ctx == nullptr) break;
    if (!system->GetInfo(ctx.get(), v1::GetInfoRequest(), &info).ok()) {
      if (++failures >= kFailuresToDown) break;  // gone: start over
      continue;
    }
    failures = 0;
    if (info.pid() != pid) break;  // another agentd took the socket: start over
    status.login_url.clear();
    status.login_error.clear();
    status.state = StateName(info.state());
    status.http = info.paths().http();
    status.agents = info.counters().agents();
    status.active_goals = info.counters().active_goals();
    Report(with_login(status));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    feed_stop_ = true;
    if (feed_context_) feed_context_->TryCancel();
  }
  cv_.notify_all();
  feed.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    feed_stop_ = false;
    feed_context_.reset();
  }
}

void DaemonLink::FollowFeed(const std::shared_ptr<grpc::Channel>& channel, int64_t after_seq) {
  auto events = v1::EventService::NewStub(channel);
  int64_t seq = after_seq;
  while (true) {
    auto ctx = std::make_shared<grpc::ClientContext>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_ || feed_stop_) return;
      feed_context_ = ctx;
    }
    v1::WatchEventsRequest req;
    req.set_after_seq(seq);
    req.mutable_filter()->add_kinds("consent.");
    req.mutable_filter()->add_kinds("plan.");
    auto reader = events->WatchEvents(ctx.get(), req);
    v1::WatchEventsResponse r;
    while (reader->Read(&r)) {
      seq = r.event().seq();
      std::lock_guard<std::mutex> lock(callback_mu_);
      if (r.event().has_consent_request() && callbacks_.on_consent) {
        callbacks_.on_consent(r.event().consent_request());
      } else if (r.event().has_plan() && callbacks_.on_plan) {
        callbacks_.on_plan(r.event().plan());
      }
    }
    reader->Finish();
    // The stream ended while agentd still answers (it drained it, say): follow again
    // from the last event seen, after a pause so a refusing daemon is not hammered.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(poll_), [this] { return stop_ || feed_stop_; });
    if (stop_ || feed_stop_) return;
  }
}

}  // namespace agentd::desktop
