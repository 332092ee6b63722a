// HostSession's writes on the Connect stream, against a real gRPC server on a unix socket
// that plays agentd's AgentHost: what it registers and what it records.
#include "agents/runtime/host_session.h"

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agentd/v1/agent_host.grpc.pb.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd::agent {
namespace {

// Registers every agent, lists `features`, and records what comes on Connect.
class RecordingHost final : public v1::AgentHostService::Service {
 public:
  explicit RecordingHost(std::vector<std::string> features) : features_(std::move(features)) {}

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*,
                        v1::RegisterResponse* resp) override {
    resp->set_lease_id("lease-1");
    resp->mutable_heartbeat_interval()->set_seconds(60);
    for (const std::string& f : features_) resp->add_features(f);
    return grpc::Status::OK;
  }

  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::ConnectResponse, v1::ConnectRequest>* stream) override {
    v1::ConnectRequest req;
    while (stream->Read(&req)) {
      absl::MutexLock l(&mu_);
      if (req.has_hello()) hello_ = true;
      if (req.has_task_event()) {
        events_.push_back(req.task_event());
        ++singles_;
      }
      if (req.has_task_events()) {
        for (const v1::TaskEvent& e : req.task_events().events()) events_.push_back(e);
        ++batches_;
      }
    }
    return grpc::Status::OK;
  }

  bool hello() {
    absl::MutexLock l(&mu_);
    return hello_;
  }
  std::vector<v1::TaskEvent> events() {
    absl::MutexLock l(&mu_);
    return events_;
  }
  int batches() {
    absl::MutexLock l(&mu_);
    return batches_;
  }
  int singles() {
    absl::MutexLock l(&mu_);
    return singles_;
  }

 private:
  const std::vector<std::string> features_;
  absl::Mutex mu_;
  bool hello_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::TaskEvent> events_ ABSL_GUARDED_BY(mu_);
  int singles_ ABSL_GUARDED_BY(mu_) = 0;
  int batches_ ABSL_GUARDED_BY(mu_) = 0;
};

class HostSessionTest : public ::testing::TestWithParam<bool> {
 protected:
  // Starts the host (listing connect.task_events when `batches`) and a session on it,
  // and waits until its Connect stream is open.
  void Start(bool batches) {
    host_ = std::make_unique<RecordingHost>(
        batches ? std::vector<std::string>{"connect.task_events"} : std::vector<std::string>{});
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + dir_.Join("host.sock"), grpc::InsecureServerCredentials());
    b.RegisterService(host_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    HostSessionOptions o;
    o.agent_id = "coder-1";
    o.socket = dir_.Join("host.sock");
    o.token = "t";
    session_ = std::make_unique<HostSession>(o);
    run_ = std::thread([this] { (void)session_->Run(); });
    ASSERT_TRUE(testing::WaitFor([&] { return host_->hello(); }, absl::Seconds(10)));
  }
  void TearDown() override {
    if (session_ != nullptr) session_->Stop();
    if (run_.joinable()) run_.join();
    session_.reset();
    if (server_ != nullptr) server_->Shutdown();
  }

  testing::TempDir dir_;
  std::unique_ptr<RecordingHost> host_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HostSession> session_;
  std::thread run_;
};

// Events sent from several threads at once all arrive, each thread's in the order it
// sent them; batches only when agentd lists the feature.
TEST_P(HostSessionTest, EventsFromManyThreadsArriveInTheirOrderAndBatchOnlyWhenAgentdTakesIt) {
  const bool batches = GetParam();
  ASSERT_NO_FATAL_FAILURE(Start(batches));
  constexpr int kThreads = 4, kEach = 300;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([this, t] {
      for (int i = 0; i < kEach; ++i) {
        v1::TaskEvent ev;
        ev.set_task_id(absl::StrCat("t", t));
        ev.set_attempt(i);
        ev.mutable_progress()->set_text(std::string(64, 'x'));
        session_->SendTaskEvent(ev);
      }
    });
  }
  for (std::thread& s : senders) s.join();
  ASSERT_TRUE(testing::WaitFor([&] { return host_->events().size() >= kThreads * kEach; },
                               absl::Seconds(20)))
      << host_->events().size() << " of " << kThreads * kEach << " arrived";
  std::map<std::string, int> next;
  for (const v1::TaskEvent& e : host_->events()) {
    EXPECT_EQ(e.attempt(), next[e.task_id()]++) << "out of order in " << e.task_id();
  }
  EXPECT_EQ(next.size(), static_cast<size_t>(kThreads));
  if (!batches) {
    EXPECT_EQ(host_->batches(), 0) << "a batch sent to an agentd that did not list it";
  }
}

// A queued event waits for the next write and goes in it, in one batch when agentd takes
// batches (in order either way); Flush writes what is queued.
TEST_P(HostSessionTest, AQueuedEventGoesWithTheNextWrite) {
  const bool batches = GetParam();
  ASSERT_NO_FATAL_FAILURE(Start(batches));
  auto event = [](int n) {
    v1::TaskEvent ev;
    ev.set_task_id("t");
    ev.set_attempt(n);
    ev.mutable_progress()->set_text(absl::StrCat("event ", n));
    return ev;
  };
  session_->QueueTaskEvent(event(0));
  session_->SendTaskEvent(event(1));
  ASSERT_TRUE(testing::WaitFor([&] { return host_->events().size() >= 2; }, absl::Seconds(10)));
  if (batches) {
    EXPECT_EQ(host_->batches(), 1);
    EXPECT_EQ(host_->singles(), 0);
  } else {
    EXPECT_EQ(host_->singles(), 2);
  }
  session_->QueueTaskEvent(event(2));
  session_->Flush();
  ASSERT_TRUE(testing::WaitFor([&] { return host_->events().size() >= 3; }, absl::Seconds(10)));
  std::vector<v1::TaskEvent> got = host_->events();
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].attempt(), i);
}

INSTANTIATE_TEST_SUITE_P(AgentdListsBatches, HostSessionTest, ::testing::Bool());

}  // namespace
}  // namespace agentd::agent
