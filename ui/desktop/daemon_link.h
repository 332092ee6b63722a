// DaemonLink: the desktop shell's view of one agentd, over its unix socket.
//
// It keeps asking whether agentd answers (GetInfo, every `poll` while it runs and while
// it does not), and while it does, follows the change feed for consent requests and
// plans (WatchEvents, kinds "consent." and "plan."), after listing the ones pending when
// it (re)connected. It tells its owner:
//   - OnStatus: agentd started or stopped answering (two failed GetInfo calls in a row:
//     one slow answer is not a stop), or what GetInfo says changed; a status that is
//     running carries a fresh one-time login link (CreateLoginCode) the first time
//     agentd answers, and again after each RequestLogin() (the UI's session expired or
//     was revoked; web sessions outlive a stall or a restart of agentd);
//   - OnConsent / OnPlan: a consent request or plan as of its latest change. Pending
//     ones (consent PENDING, plan PROPOSED) wait for a person; any other status means it
//     was decided and a notification about it can go. The same request may be reported
//     more than once (once listed, then from the feed): key on its id.
//
// The socket is checked as agentctl checks it (CheckSocketTrust): a socket another user
// could have put there is not spoken to, and the status says why.
//
// Threading: Start() runs a thread of its own (and one for the feed while connected);
// every callback runs on one of those threads, never two at once, and never after Stop()
// returns. The owner marshals to its UI thread. Poke() and RequestLogin() (any thread)
// make the next check happen now, e.g. right after starting agentd. Stop() cancels the
// calls in flight and joins; the destructor calls it.
#ifndef AGENTD_UI_DESKTOP_DAEMON_LINK_H_
#define AGENTD_UI_DESKTOP_DAEMON_LINK_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "agentd/v1/consent.pb.h"
#include "agentd/v1/plans.pb.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace agentd::desktop {

struct DaemonStatus {
  bool running = false;
  // The socket is there but not to be trusted (another user could have made it): the
  // reason says why, and nothing should start an agentd in its place.
  bool untrusted = false;
  // Why it is not reachable ("no agentd listens on …", an untrusted socket…), for a
  // person; empty while running.
  std::string reason;
  int64_t pid = 0;
  std::string version;
  std::string state;  // "serving", "draining", "failed", …
  std::string http;   // the UI's listener, "host:port"; empty when agentd serves none
  int64_t agents = 0;
  int64_t active_goals = 0;
  // A one-time login link for the UI; set on the first status of each agentd process
  // (see above) and empty otherwise, or when it could not be made (then login_error).
  std::string login_url;
  std::string login_error;

  bool operator==(const DaemonStatus& o) const;
};

class DaemonLink {
 public:
  struct Callbacks {
    std::function<void(const DaemonStatus&)> on_status;
    std::function<void(const v1::ConsentRequest&)> on_consent;
    std::function<void(const v1::Plan&)> on_plan;
  };

  // `socket`: agentd's unix socket path. `poll`: how often to ask (GetInfo).
  DaemonLink(std::string socket, Callbacks callbacks, absl::Duration poll = absl::Seconds(1));
  ~DaemonLink();
  DaemonLink(const DaemonLink&) = delete;
  DaemonLink& operator=(const DaemonLink&) = delete;

  void Start();
  void Poke();
  // A new login link with the next status (only while agentd serves the web UI).
  void RequestLogin();
  void Stop();

 private:
  void Run();
  // One connected session: returns when agentd stops answering or Stop() is called.
  void Connected(const std::shared_ptr<grpc::Channel>& channel, DaemonStatus status,
                 int64_t after_seq);
  void FollowFeed(const std::shared_ptr<grpc::Channel>& channel, int64_t after_seq);
  void Report(const DaemonStatus& status);
  // Waits `d`, or less when poked or stopped; false once stopped.
  bool Wait(absl::Duration d);
  // A context for one unary call with the deadline, which Stop() cancels; null once
  // stopped.
  std::shared_ptr<grpc::ClientContext> Call();
  bool stopped();

  const std::string socket_;
  const Callbacks callbacks_;
  const absl::Duration poll_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool poked_ = false;
  bool feed_stop_ = false;  // the connected session is over: the feed thread ends
  bool login_requested_ = false;
  std::shared_ptr<grpc::ClientContext> feed_context_;  // guarded by mu_; cancelled by Stop()
  std::shared_ptr<grpc::ClientContext> call_context_;  // guarded by mu_; cancelled by Stop()
  std::mutex callback_mu_;                             // one callback at a time, from either thread
  std::thread thread_;
  bool have_last_ = false;
  DaemonStatus last_;
  bool logged_in_ = false;  // a login link was made (the first status carries one)
};

}  // namespace agentd::desktop

#endif  // AGENTD_UI_DESKTOP_DAEMON_LINK_H_
