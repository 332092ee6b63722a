// agentd's HTTP listener, driven over real TCP by a raw HTTP/1.1 client: the gRPC-web
// bridge (binary and text, streams, deadlines, disconnects, auth), /metrics, /healthz,
// the login link and the static UI. Browser clients (connect-web, grpc-web) are tested
// in tests/ui.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/audit.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"
#include "tests/support/http_conn.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A detail of an audit entry, or "(none)" (Map::at would abort the test program).
std::string Detail(const v1::AuditEntry& e, const std::string& key) {
  auto it = e.details().find(key);
  return it == e.details().end() ? "(none)" : it->second;
}

class WebTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::vector<std::string>& extra = {},
                   const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"--http", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(daemon_.Start(args, env)) << daemon_.log();
    client_ = std::make_unique<Client>(daemon_.client());
    grpc::Status s;
    v1::GetInfoResponse info = client_->GetInfo(&s);
    ASSERT_TRUE(s.ok()) << s.error_message();
    std::string http = info.paths().http();
    ASSERT_TRUE(absl::SimpleAtoi(http.substr(http.rfind(':') + 1), &port_) && port_ > 0) << http;
    token_ = daemon_.admin_token();
    ASSERT_FALSE(token_.empty());
  }
  std::string Bearer() const { return "Authorization: Bearer " + token_; }

  // A login link from `agentctl ui`: "/login?code=…" (the path), or "" with a failure.
  std::string LoginPath() {
    RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "ui"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string prefix = absl::StrCat("http://127.0.0.1:", port_);
    std::string url(absl::StripAsciiWhitespace(r.out));
    EXPECT_TRUE(absl::StartsWith(url, prefix + "/login?code=")) << url;
    return absl::StartsWith(url, prefix) ? url.substr(prefix.size()) : "";
  }
  // GET `path` (a login link); the Set-Cookie header's value ("" when none) and status.
  std::string Login(const std::string& path, int* status) {
    HttpConn c(port_);
    c.Send("GET", path, {});
    EXPECT_TRUE(c.ReadHead());
    *status = c.status();
    for (absl::string_view line : absl::StrSplit(c.head(), "\r\n")) {
      if (absl::ConsumePrefix(&line, "Set-Cookie: ")) return std::string(line);
    }
    return "";
  }
  // The grpc-status of ListAgents through the bridge with `headers`.
  int ListAgentsStatus(const std::vector<std::string>& headers, std::string* message = nullptr) {
    return GrpcStatus(Call("/agentd.v1.AgentService/ListAgents", v1::ListAgentsRequest(), headers),
                      message);
  }

  // A unary gRPC-web call; returns the frames.
  std::vector<Frame> Call(const std::string& method, const google::protobuf::Message& req,
                          std::vector<std::string> headers, bool text = false) {
    HttpConn c(port_);
    headers.push_back(text ? "Content-Type: application/grpc-web-text"
                           : "Content-Type: application/grpc-web+proto");
    headers.push_back("X-Grpc-Web: 1");
    std::string body = DataFrame(req);
    if (text) body = absl::Base64Escape(body);
    c.Send("POST", method, headers, body);
    EXPECT_TRUE(c.ReadHead());
    EXPECT_EQ(c.status(), 200);
    EXPECT_TRUE(c.ReadAll());
    return Frames(c.body(), text);
  }

  std::string Metrics() {
    HttpConn c(port_);
    c.Send("GET", "/metrics", {Bearer()});
    if (!c.ReadHead() || !c.ReadAll()) return "";
    return c.body();
  }
  // The value of one series in /metrics, or -1 when absent.
  double Metric(const std::string& series) {
    for (absl::string_view line : absl::StrSplit(Metrics(), '\n')) {
      if (absl::ConsumePrefix(&line, series + " ")) {
        double v = 0;
        return absl::SimpleAtod(line, &v) ? v : -1;
      }
    }
    return -1;
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::unique_ptr<Client> client_;
  int port_ = 0;
  std::string token_;
};

// A watcher far behind catches up across many of the feed's batches (written out by
// gRPC's thread, a batch at a time) with every event once and in order, then follows
// live commits: the same over native gRPC as the bridge relies on.
TEST_F(WebTest, WatchEventsCatchesUpAcrossManyBatchesThenFollowsLive) {
  StartDaemon();
  constexpr int kMessages = 700;  // each one event: a few of the feed's batches
  auto send = [&](int i) {
    v1::SendMessageRequest req;
    req.set_to("human");
    req.set_body(absl::StrCat("message ", i));
    v1::SendMessageResponse resp;
    grpc::Status s = client_->messages().SendMessage(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  };
  for (int i = 0; i < kMessages; ++i) send(i);
  std::unique_ptr<grpc::ClientContext> ctx = Ctx();
  v1::WatchEventsRequest req;
  req.set_after_seq(0);
  auto stream = client_->events().WatchEvents(ctx.get(), req);
  v1::WatchEventsResponse ev;
  int64_t last_seq = 0;
  int sent_seen = 0;
  while (sent_seen < kMessages && stream->Read(&ev)) {
    ASSERT_GT(ev.event().seq(), last_seq) << "out of order or repeated";
    last_seq = ev.event().seq();
    if (ev.event().kind() == "message.sent") ++sent_seen;
  }
  ASSERT_EQ(sent_seen, kMessages) << "the stream ended after seq " << last_seq;
  send(kMessages);  // live, after the catch-up
  bool live = false;
  while (!live && stream->Read(&ev)) {
    ASSERT_GT(ev.event().seq(), last_seq);
    last_seq = ev.event().seq();
    live = ev.event().kind() == "message.sent";
  }
  EXPECT_TRUE(live) << "the live event did not arrive";
  ctx->TryCancel();
  (void)stream->Finish();
}

TEST_F(WebTest, UnaryCallsWorkInBinaryAndTextModes) {
  StartDaemon();
  for (bool text : {false, true}) {
    std::vector<Frame> frames =
        Call("/agentd.v1.SystemService/GetVersion", v1::GetVersionRequest(), {Bearer()}, text);
    ASSERT_EQ(frames.size(), 2u) << "text=" << text;
    EXPECT_EQ(frames[0].flags, 0);
    v1::GetVersionResponse resp;
    ASSERT_TRUE(resp.ParseFromString(frames[0].payload));
    EXPECT_EQ(resp.api_version(), "agentd.v1");
    EXPECT_EQ(GrpcStatus(frames), 0);
    // A failed call is its trailer alone, with the status and the message.
    v1::GetAgentRequest missing;
    missing.set_agent_id("nobody-1");
    frames = Call("/agentd.v1.AgentService/GetAgent", missing, {Bearer()}, text);
    ASSERT_EQ(frames.size(), 1u) << "text=" << text;
    std::string message;
    EXPECT_EQ(GrpcStatus(frames, &message), static_cast<int>(grpc::StatusCode::NOT_FOUND));
    EXPECT_THAT(message, HasSubstr("nobody-1"));
  }
  // A unary answer is sent whole, with its length: the connection serves the next call.
  HttpConn c(port_);
  for (int i = 0; i < 3; ++i) {
    c.Send("POST", "/agentd.v1.SystemService/GetVersion",
           {Bearer(), "Content-Type: application/grpc-web+proto"},
           DataFrame(v1::GetVersionRequest()));
    ASSERT_TRUE(c.ReadHead()) << "call " << i;
    EXPECT_THAT(c.head(), HasSubstr("Content-Length: "));
    ASSERT_TRUE(c.ReadAll()) << "call " << i;
    EXPECT_EQ(GrpcStatus(Frames(c.body(), false)), 0) << "call " << i;
    c.Reset();
  }
}

TEST_F(WebTest, WithoutTheTokenEveryCallIsUnauthenticatedAndNoDataIsServed) {
  StartDaemon();
  for (const std::vector<std::string>& headers : {std::vector<std::string>{},
                                                  {"Authorization: Bearer agentd_wrong"},
                                                  {"Cookie: agentd_session=0123"}}) {
    std::string message;
    std::vector<Frame> frames =
        Call("/agentd.v1.AgentService/ListAgents", v1::ListAgentsRequest(), headers);
    EXPECT_EQ(GrpcStatus(frames, &message), 16);  // UNAUTHENTICATED
    EXPECT_THAT(message, HasSubstr("admin token"));
    for (const Frame& f : frames) EXPECT_TRUE(f.flags & 0x80) << "a data frame was served";
  }
  HttpConn m(port_);
  m.Send("GET", "/metrics", {});
  ASSERT_TRUE(m.ReadHead());
  EXPECT_EQ(m.status(), 401);
  HttpConn h(port_);
  h.Send("GET", "/healthz", {});
  ASSERT_TRUE(h.ReadHead());
  ASSERT_TRUE(h.ReadAll());
  EXPECT_EQ(h.status(), 200);
  EXPECT_EQ(h.body(), "ok\n");
}

// The login link holds a one-time code (agentctl ui asks the daemon for it): the first
// GET gets a random session id as a strict, HttpOnly cookie with an expiry; the same
// link again gets nothing. The admin token goes in no link and no cookie.
TEST_F(WebTest, LoginLinkSetsAStrictHttpOnlyCookieThatAuthenticates) {
  StartDaemon();
  int status = 0;
  EXPECT_EQ(Login("/login?code=0123456789abcdef0123456789abcdef", &status), "");
  EXPECT_EQ(status, 401);
  // The old link with the admin token itself logs no one in.
  EXPECT_EQ(Login("/?token=" + token_, &status), "");
  EXPECT_NE(status, 303);

  std::string link = LoginPath();
  std::string cookie = Login(link, &status);
  EXPECT_EQ(status, 303);
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(cookie, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(cookie, HasSubstr("Max-Age=43200"));  // server.http_session_ttl's default, 12h
  EXPECT_THAT(cookie, Not(HasSubstr(token_))) << "the cookie must not carry the token itself";
  std::string pair = cookie.substr(0, cookie.find(';'));
  std::vector<Frame> frames =
      Call("/agentd.v1.AgentService/ListAgents", v1::ListAgentsRequest(), {"Cookie: " + pair});
  EXPECT_EQ(GrpcStatus(frames), 0);
  ASSERT_EQ(frames.size(), 2u);
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(agents.ParseFromString(frames[0].payload));
  std::vector<std::string> ids;
  for (const v1::Agent& a : agents.agents()) ids.push_back(a.id());
  EXPECT_THAT(ids, ::testing::ElementsAre("ceo", "manager"));  // the default config's

  // The same link a second time: spent.
  EXPECT_EQ(Login(link, &status), "");
  EXPECT_EQ(status, 401);
  // Another link, another session: the cookie is no function of the token.
  std::string second = Login(LoginPath(), &status);
  EXPECT_EQ(status, 303);
  EXPECT_NE(second.substr(0, second.find(';')), pair);
}

// Sessions end when revoked (agentctl ui --revoke-all), and by themselves at their expiry
// (server.http_session_ttl); unused codes are voided with them.
TEST_F(WebTest, SessionsCanBeRevokedAndExpire) {
  std::string config = dir_.Join("agentd.yaml");
  WriteFile(config, absl::StrCat("server: {http_session_ttl: ",
                                 absl::ToInt64Seconds(Scaled(absl::Seconds(3))), "s}\n"));
  StartDaemon({"--config", config});
  int status = 0;
  std::string cookie = Login(LoginPath(), &status);
  ASSERT_EQ(status, 303);
  std::string revoked = "Cookie: " + cookie.substr(0, cookie.find(';'));
  ASSERT_EQ(ListAgentsStatus({revoked}), 0);
  std::string unused = LoginPath();
  RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "ui", "--revoke-all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("revoked 1 web session(s) and 1 unused login code(s)"));
  EXPECT_EQ(ListAgentsStatus({revoked}), 16);  // UNAUTHENTICATED
  EXPECT_EQ(Login(unused, &status), "");
  EXPECT_EQ(status, 401);

  cookie = Login(LoginPath(), &status);
  ASSERT_EQ(status, 303);
  std::string expiring = "Cookie: " + cookie.substr(0, cookie.find(';'));
  ASSERT_EQ(ListAgentsStatus({expiring}), 0);
  EXPECT_TRUE(WaitForValue([&] { return ListAgentsStatus({expiring}); },
                           [](int code) { return code == 16; }, absl::Seconds(20)))
      << "the session outlived server.http_session_ttl";
}

// DNS rebinding: a page from another site whose name now resolves to 127.0.0.1 sends its
// own name in Host. Refused everywhere, /healthz included; the listener's own names
// (loopback addresses, localhost, the configured ones) are served.
TEST_F(WebTest, AForeignHostHeaderIsRefusedAndLoopbackNamesAreServed) {
  std::string config = dir_.Join("agentd.yaml");
  WriteFile(config, "server: {http_hosts: [agentd.lan]}\n");
  StartDaemon({"--config", config});
  auto healthz = [&](const std::string& host) {
    HttpConn c(port_);
    c.Send("GET", "/healthz", {"Host: " + host});
    if (!c.ReadHead()) return -1;
    return c.status();
  };
  for (const std::string& host : std::vector<std::string>{
           "evil.example", "evil.example:" + std::to_string(port_), "localhost.evil.example",
           "agentd.lan.evil.example", "127.0.0.1.nip.io"}) {
    EXPECT_EQ(healthz(host), 403) << host;
  }
  for (const std::string& host : std::vector<std::string>{
           "127.0.0.1", "127.0.0.1:" + std::to_string(port_), "127.9.8.7", "[::1]", "localhost",
           "LocalHost:" + std::to_string(port_), "localhost.", "agentd.lan",
           "agentd.lan:" + std::to_string(port_)}) {
    EXPECT_EQ(healthz(host), 200) << host;
  }
  // The API refuses it before the token is even looked at, and /metrics too.
  HttpConn call(port_);
  call.Send("POST", "/agentd.v1.SystemService/GetVersion",
            {"Host: evil.example", Bearer(), "Content-Type: application/grpc-web+proto"},
            DataFrame(v1::GetVersionRequest()));
  ASSERT_TRUE(call.ReadHead());
  EXPECT_EQ(call.status(), 403);
  HttpConn metrics(port_);
  metrics.Send("GET", "/metrics", {"Host: evil.example", Bearer()});
  ASSERT_TRUE(metrics.ReadHead());
  EXPECT_EQ(metrics.status(), 403);
}

// Whoever has no token learns nothing about agentd's host from its refusals: no state
// dir, no token file name, no echo of what was asked for.
TEST_F(WebTest, UnauthenticatedAnswersNameNoPath) {
  std::string ui = dir_.Join("ui");
  ASSERT_EQ(mkdir(ui.c_str(), 0700), 0);
  WriteFile(ui + "/index.html", "<!doctype html><title>agentd ui</title>");
  std::string config = dir_.Join("agentd.yaml");
  WriteFile(config, absl::StrCat("ui: {dir: \"", ui, "\"}\n"));
  StartDaemon({"--config", config});
  std::vector<std::string> answers;
  HttpConn m(port_);
  m.Send("GET", "/metrics", {});
  ASSERT_TRUE(m.ReadHead());
  ASSERT_TRUE(m.ReadAll());
  EXPECT_EQ(m.status(), 401);
  answers.push_back(m.body());
  std::string message;
  EXPECT_EQ(ListAgentsStatus({}, &message), 16);
  EXPECT_THAT(message, HasSubstr("admin token"));
  answers.push_back(message);
  HttpConn missing(port_);
  missing.Send("GET", "/assets/secret-name.js", {});
  ASSERT_TRUE(missing.ReadHead());
  ASSERT_TRUE(missing.ReadAll());
  EXPECT_EQ(missing.status(), 404);
  answers.push_back(missing.body());
  int status = 0;
  Login("/login?code=nope", &status);
  EXPECT_EQ(status, 401);
  for (const std::string& a : answers) {
    EXPECT_THAT(a, Not(HasSubstr(dir_.path()))) << a;
    EXPECT_THAT(a, Not(HasSubstr("admin.token"))) << a;
    EXPECT_THAT(a, Not(HasSubstr("secret-name"))) << a;
  }
}

// Half-open requests (a few bytes of a head, then nothing) are what a slowloris client
// sends. More of them than the listener's connection cap (1,024) would have locked
// everyone out: now the longest idle ones make room, /healthz answers at once, and a
// head that does not come is given up after seconds.
TEST_F(WebTest, AThousandHalfOpenRequestsDoNotLockOutHealthz) {
  StartDaemon();
  constexpr int kHalfOpen = 1100;
  rlimit nofile{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &nofile), 0);
  if (nofile.rlim_cur < kHalfOpen + 200) {
    rlimit raised{std::min<rlim_t>(nofile.rlim_max, kHalfOpen + 200), nofile.rlim_max};
    if (raised.rlim_cur < kHalfOpen + 200 || setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      GTEST_SKIP() << "this test needs " << kHalfOpen + 200 << " descriptors; the hard limit is "
                   << nofile.rlim_max;
    }
  }
  std::vector<std::unique_ptr<HttpConn>> half_open;
  for (int i = 0; i < kHalfOpen; ++i) {
    auto c = std::make_unique<HttpConn>(port_);
    if (!c->connected()) break;  // the kernel's backlog is full: enough
    // A request line and a header, and never the blank line that ends the head.
    std::string partial = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    (void)c->SendRaw(partial);
    half_open.push_back(std::move(c));
  }
  ASSERT_GE(half_open.size(), 1000u);
  absl::Time start = absl::Now();
  HttpConn h(port_);
  ASSERT_TRUE(h.Send("GET", "/healthz", {}));
  ASSERT_TRUE(h.ReadHead(Scaled(absl::Seconds(3)))) << "/healthz did not answer";
  ASSERT_TRUE(h.ReadAll());
  EXPECT_EQ(h.status(), 200);
  EXPECT_EQ(h.body(), "ok\n");
  EXPECT_LT(absl::Now() - start, Scaled(absl::Seconds(3)));
  half_open.clear();

  // One head that never completes is dropped within the header timeout (10 s), not held.
  HttpConn slow(port_);
  std::string partial = "GET /healthz HTTP/1.1\r\n";
  ASSERT_TRUE(slow.SendRaw(partial));
  EXPECT_FALSE(slow.ReadHead(Scaled(absl::Seconds(20))))
      << "a half-open request was answered: " << slow.head();
  EXPECT_LT(absl::Now() - start, Scaled(absl::Seconds(25))) << "it was held, not timed out";
}

// Method names are the caller's to choose: made-up ones, on the unix socket or through
// the bridge, share one "unknown" series instead of adding one each.
TEST_F(WebTest, UnknownGrpcMethodsAreCountedUnderOneLabel) {
  StartDaemon();
  grpc::GenericStub stub(daemon_.UnixChannel());
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice empty("");  // an empty message: what any request without fields is
    grpc::ByteBuffer request(&empty, 1), response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, absl::StrCat("/agentd.v1.SystemService/MadeUp", i), grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = s;
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
  }
  EXPECT_EQ(GrpcStatus(Call("/made.Up/Method", v1::GetVersionRequest(), {Bearer()})), 12);
  ASSERT_EQ(
      GrpcStatus(Call("/agentd.v1.SystemService/GetVersion", v1::GetVersionRequest(), {Bearer()})),
      0);
  std::string m;
  ASSERT_TRUE(WaitForValue(
      [&] { return Metrics(); },
      [](const std::string& text) { return absl::StrContains(text, "method=\"unknown\""); },
      absl::Seconds(10), &m));
  EXPECT_THAT(m, Not(HasSubstr("MadeUp")));
  EXPECT_THAT(m, Not(HasSubstr("made.Up")));
  // Real methods keep their names.
  EXPECT_THAT(m, HasSubstr("method=\"agentd.v1.SystemService/GetVersion\""));
}

TEST_F(WebTest, UnknownMethodsAreUnimplementedAndAgentHostIsRefused) {
  StartDaemon();
  EXPECT_EQ(GrpcStatus(
                Call("/agentd.v1.SystemService/NoSuchMethod", v1::GetVersionRequest(), {Bearer()})),
            12);
  EXPECT_EQ(GrpcStatus(Call("/nothing", v1::GetVersionRequest(), {Bearer()})), 12);
  EXPECT_EQ(GrpcStatus(
                Call("/agentd.v1.AgentHostService/Heartbeat", v1::GetVersionRequest(), {Bearer()})),
            7);
}

TEST_F(WebTest, StreamsDeliverEventsAsTheyHappenAndHonourGrpcTimeout) {
  StartDaemon();
  HttpConn c(port_);
  v1::WatchEventsRequest req;
  req.set_after_seq(-1);
  // The event must come within the stream's deadline: scaled with the machine's speed.
  const int64_t timeout_s =
      absl::ToInt64Seconds(absl::Ceil(Scaled(absl::Seconds(5)), absl::Seconds(1)));
  ASSERT_TRUE(c.Send("POST", "/agentd.v1.EventService/WatchEvents",
                     {Bearer(), "Content-Type: application/grpc-web+proto",
                      absl::StrCat("grpc-timeout: ", timeout_s, "S")},
                     DataFrame(req)));
  ASSERT_TRUE(c.ReadHead());
  EXPECT_THAT(c.head(), HasSubstr("application/grpc-web+proto"));
  // Make an event happen: start an agent over the unix socket.
  grpc::Status s = client_->StartAgent("coder", "web-coder");
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(c.ReadUntil(
      [](const std::string& body) {
        for (const Frame& f : Frames(body)) {
          v1::WatchEventsResponse r;
          if (f.flags == 0 && r.ParseFromString(f.payload) &&
              absl::StrContains(r.DebugString(), "web-coder")) {
            return true;
          }
        }
        return false;
      },
      Scaled(absl::Seconds(10))))
      << "no event about web-coder arrived";
  // The deadline ends the stream with DEADLINE_EXCEEDED, as grpc-timeout asks.
  ASSERT_TRUE(c.ReadAll(Scaled(absl::Seconds(15))));
  EXPECT_EQ(GrpcStatus(Frames(c.body())), 4);
}

TEST_F(WebTest, AConnectionServesRequestsInTurnAfterAStreamEnds) {
  StartDaemon();
  HttpConn c(port_);
  v1::WatchEventsRequest watch;
  watch.set_after_seq(-1);
  ASSERT_TRUE(c.Send("POST", "/agentd.v1.EventService/WatchEvents",
                     {Bearer(), "Content-Type: application/grpc-web+proto", "grpc-timeout: 100m"},
                     DataFrame(watch)));
  ASSERT_TRUE(c.ReadHead());
  ASSERT_TRUE(c.ReadAll());
  EXPECT_EQ(GrpcStatus(Frames(c.body())), 4);  // DEADLINE_EXCEEDED
  // The same connection, kept alive: a unary call, then a HEAD and a GET.
  c.Reset();
  ASSERT_TRUE(c.Send("POST", "/agentd.v1.SystemService/GetVersion",
                     {Bearer(), "Content-Type: application/grpc-web+proto"},
                     DataFrame(v1::GetVersionRequest())));
  ASSERT_TRUE(c.ReadHead());
  ASSERT_TRUE(c.ReadAll());
  EXPECT_EQ(GrpcStatus(Frames(c.body())), 0);
  c.Reset();
  ASSERT_TRUE(c.Send("HEAD", "/healthz", {}));
  ASSERT_TRUE(c.ReadHead());
  EXPECT_EQ(c.status(), 200);
  EXPECT_THAT(c.head(), HasSubstr("Content-Length: 3"));
  c.Reset();
  ASSERT_TRUE(c.Send("GET", "/healthz", {}));  // a HEAD's answer carried no body to skip
  ASSERT_TRUE(c.ReadHead());
  ASSERT_TRUE(c.ReadAll());
  EXPECT_EQ(c.body(), "ok\n");
}

TEST_F(WebTest, AnOversizedBodyIsRefusedWith413) {
  StartDaemon();
  HttpConn c(port_);
  // agentd answers once it sees the length, and closes: the rest of the body may not
  // be written at all.
  (void)c.Send("POST", "/agentd.v1.SystemService/GetVersion",
               {Bearer(), "Content-Type: application/grpc-web+proto"},
               std::string((4 << 20) + 1, 'x'));
  ASSERT_TRUE(c.ReadHead());
  EXPECT_EQ(c.status(), 413);
}

TEST_F(WebTest, ClientDisconnectCancelsTheServerStream) {
  StartDaemon();
  // A watch that has nothing to send (no goal has this id): only the listener noticing
  // the closed socket can end it, not a failed write.
  v1::WatchConsentRequestsRequest req;
  req.set_after_seq(-1);
  req.set_goal_id("no-such-goal");
  {
    HttpConn c(port_);
    c.Send("POST", "/agentd.v1.ConsentService/WatchConsentRequests",
           {Bearer(), "Content-Type: application/grpc-web-text"},
           absl::Base64Escape(DataFrame(req)));
    ASSERT_TRUE(c.ReadHead());
    ASSERT_TRUE(WaitForValue([&] { return Metric("agentd_http_grpc_web_calls"); },
                             [](double v) { return v == 1; }, absl::Seconds(10)));
  }  // the connection closes here, with the stream idle
  EXPECT_TRUE(WaitForValue([&] { return Metric("agentd_http_grpc_web_calls"); },
                           [](double v) { return v == 0; }, absl::Seconds(10)))
      << Metrics();
  EXPECT_TRUE(WaitFor(
      [&] {
        return Metric(
                   "agentd_rpc_streams_total{method=\"agentd.v1.ConsentService/"
                   "WatchConsentRequests\",code=\"CANCELLED\"}") == 1;
      },
      absl::Seconds(10)))
      << Metrics();
}

TEST_F(WebTest, FiftyOpenStreamsDoNotStarveUnaryCalls) {
  StartDaemon();
  v1::WatchEventsRequest req;
  req.set_after_seq(-1);
  std::vector<std::unique_ptr<HttpConn>> streams;
  for (int i = 0; i < 50; ++i) {
    streams.push_back(std::make_unique<HttpConn>(port_));
    ASSERT_TRUE(streams.back()->Send("POST", "/agentd.v1.EventService/WatchEvents",
                                     {Bearer(), "Content-Type: application/grpc-web+proto"},
                                     DataFrame(req)))
        << "stream " << i;
    ASSERT_TRUE(streams.back()->ReadHead()) << "stream " << i;
  }
  ASSERT_TRUE(WaitForValue([&] { return Metric("agentd_http_grpc_web_calls"); },
                           [](double v) { return v == 50; }, absl::Seconds(10)));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(
        GrpcStatus(Call("/agentd.v1.SystemService/GetInfo", v1::GetInfoRequest(), {Bearer()})), 0);
  }
}

TEST_F(WebTest, MetricsCoverAgentsRpcsAndTheListener) {
  StartDaemon();
  ASSERT_EQ(
      GrpcStatus(Call("/agentd.v1.SystemService/GetVersion", v1::GetVersionRequest(), {Bearer()})),
      0);
  ASSERT_TRUE(WaitForValue([&] { return Metric("agentd_agents{state=\"idle\"}"); },
                           [](double v) { return v == 2; }, absl::Seconds(20)))
      << Metrics();
  std::string m = Metrics();
  // Every state is a series, zeros included, named as agentctl prints it.
  for (const char* state : {"starting", "running", "busy", "unresponsive", "backoff", "stopping",
                            "stopped", "failed"}) {
    EXPECT_THAT(m, HasSubstr(absl::StrCat("agentd_agents{state=\"", state, "\"} 0"))) << state;
  }
  EXPECT_THAT(m, Not(HasSubstr("AGENT_STATE_")));
  EXPECT_THAT(m, HasSubstr(absl::StrCat("agentd_build_info{version=\"", AGENTD_VERSION)));
  for (const char* series :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_max_fds ", "process_start_time_seconds ", "process_virtual_memory_bytes "}) {
    EXPECT_THAT(m, HasSubstr(std::string("\n") + series)) << series;
  }
  EXPECT_GT(Metric("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Metric("process_open_fds"), 3);
  EXPECT_THAT(m, HasSubstr("# TYPE agentd_rpc_duration_seconds histogram"));
  EXPECT_THAT(m, HasSubstr("agentd_rpc_duration_seconds_count{method=\"agentd.v1.SystemService/"
                           "GetVersion\",code=\"OK\"} 1"));
  // Each method's series by code are kept from its first call (ApiInterceptorFactory): the
  // next calls count in the same series, another code in a series of its own.
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(GrpcStatus(
                  Call("/agentd.v1.SystemService/GetVersion", v1::GetVersionRequest(), {Bearer()})),
              0);
  }
  ASSERT_EQ(
      GrpcStatus(Call("/agentd.v1.AgentService/ListAgents", v1::ListAgentsRequest(), {Bearer()})),
      0);
  v1::ListAgentsRequest bad;
  bad.set_page_size(-1);
  ASSERT_EQ(GrpcStatus(Call("/agentd.v1.AgentService/ListAgents", bad, {Bearer()})),
            3);  // INVALID_ARGUMENT
  std::string after = Metrics();
  EXPECT_THAT(after, HasSubstr("agentd_rpc_duration_seconds_count{method=\"agentd.v1.SystemService/"
                               "GetVersion\",code=\"OK\"} 3"));
  EXPECT_THAT(after, HasSubstr("agentd_rpc_duration_seconds_count{method=\"agentd.v1."
                               "AgentService/ListAgents\",code=\"OK\"}"));
  EXPECT_THAT(after, HasSubstr("agentd_rpc_duration_seconds_count{method=\"agentd.v1."
                               "AgentService/ListAgents\",code=\"INVALID_ARGUMENT\"} 1"));
  EXPECT_THAT(m, HasSubstr("agentd_heartbeats_total{role=\"ceo\"}"));
  EXPECT_THAT(m, HasSubstr("# TYPE agentd_agent_restarts_total counter"));
  EXPECT_THAT(m, HasSubstr("agentd_agent_restarts_total{agent=\"ceo\",role=\"ceo\"} 0"));

  // The scrape token (STATE_DIR/metrics.token) reads /metrics and nothing else.
  std::string scrape = ReadFileOrEmpty(daemon_.state_dir() + "/metrics.token");
  while (!scrape.empty() && (scrape.back() == '\n' || scrape.back() == '\r')) scrape.pop_back();
  ASSERT_FALSE(scrape.empty());
  struct stat st;
  ASSERT_EQ(stat((daemon_.state_dir() + "/metrics.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  HttpConn scraped(port_);
  scraped.Send("GET", "/metrics", {"Authorization: Bearer " + scrape});
  ASSERT_TRUE(scraped.ReadHead());
  EXPECT_EQ(scraped.status(), 200);
  EXPECT_EQ(GrpcStatus(Call("/agentd.v1.SystemService/GetVersion", v1::GetVersionRequest(),
                            {"Authorization: Bearer " + scrape})),
            16);  // UNAUTHENTICATED
  EXPECT_THAT(m, HasSubstr("agentd_log_bytes_written_total "));
  EXPECT_THAT(m, HasSubstr("agentd_http_requests_total{route=\"grpc-web\",code=\"OK\"} 1"));
  EXPECT_THAT(m, HasSubstr("# TYPE agentd_llm_call_duration_seconds histogram"));
  EXPECT_THAT(m, HasSubstr("# TYPE agentd_llm_time_to_first_token_seconds histogram"));
  EXPECT_THAT(m, HasSubstr("# TYPE agentd_goal_budget_remaining_usd gauge"));

  // As Prometheus reads it: promtool's parser and its lint (names, units, help, types).
  WriteFile(dir_.Join("metrics.txt"), m);
  RunResult lint =
      RunCommand({"/bin/sh", "-c", "promtool check metrics < " + dir_.Join("metrics.txt")});
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
}

TEST_F(WebTest, CorsAllowsConfiguredOriginsOnly) {
  std::string config = dir_.Join("agentd.yaml");
  std::ofstream(config) << "server:\n  cors_origins: [\"https://ui.example:8443\"]\n";
  StartDaemon({"--config", config});
  HttpConn ok(port_);
  ok.Send("OPTIONS", "/agentd.v1.SystemService/GetVersion",
          {"Origin: https://ui.example:8443", "Access-Control-Request-Method: POST",
           "Access-Control-Request-Headers: content-type,x-grpc-web,authorization"});
  ASSERT_TRUE(ok.ReadHead());
  EXPECT_EQ(ok.status(), 204);
  EXPECT_THAT(ok.head(), HasSubstr("Access-Control-Allow-Origin: https://ui.example:8443"));
  EXPECT_THAT(ok.head(),
              HasSubstr("Access-Control-Allow-Headers: content-type,x-grpc-web,authorization"));
  HttpConn bad(port_);
  bad.Send("OPTIONS", "/agentd.v1.SystemService/GetVersion",
           {"Origin: https://evil.example", "Access-Control-Request-Method: POST"});
  ASSERT_TRUE(bad.ReadHead());
  EXPECT_EQ(bad.status(), 403);
  EXPECT_THAT(bad.head(), Not(HasSubstr("Access-Control-Allow-Origin")));
  // The actual call from the configured origin exposes grpc-status to the page.
  HttpConn call(port_);
  call.Send(
      "POST", "/agentd.v1.SystemService/GetVersion",
      {Bearer(), "Origin: https://ui.example:8443", "Content-Type: application/grpc-web+proto"},
      DataFrame(v1::GetVersionRequest()));
  ASSERT_TRUE(call.ReadHead());
  EXPECT_THAT(call.head(), HasSubstr("Access-Control-Expose-Headers: grpc-status"));
  // A page from an origin not configured is refused even with a valid token.
  HttpConn foreign(port_);
  foreign.Send(
      "POST", "/agentd.v1.SystemService/GetVersion",
      {Bearer(), "Origin: https://evil.example", "Content-Type: application/grpc-web+proto"},
      DataFrame(v1::GetVersionRequest()));
  ASSERT_TRUE(foreign.ReadHead());
  EXPECT_EQ(foreign.status(), 403);
}

// The UI routes with #fragments: "/" is the app, its files are files, and any other path
// is 404 (a typo such as /metric or /readz must not answer 200 with the app).
TEST_F(WebTest, ServesTheBuiltUiAndProbesAndNothingElse) {
  std::string ui = dir_.Join("ui");
  ASSERT_EQ(system(("mkdir -p " + ui + "/assets").c_str()), 0);
  std::ofstream(ui + "/index.html") << "<!doctype html><title>agentd ui</title>";
  std::ofstream(ui + "/assets/app-1234.js") << "console.log('agentd')";
  std::ofstream(dir_.Join("secret.txt")) << "not for the web";
  std::string config = dir_.Join("agentd.yaml");
  std::ofstream(config) << "ui:\n  dir: \"" << ui << "\"\n";
  StartDaemon({"--config", config});
  auto get = [&](const std::string& path, int* status, std::string* head = nullptr) {
    HttpConn c(port_);
    c.Send("GET", path, {});
    EXPECT_TRUE(c.ReadHead());
    EXPECT_TRUE(c.ReadAll());
    *status = c.status();
    if (head) *head = c.head();
    return c.body();
  };
  int status = 0;
  std::string head;
  EXPECT_THAT(get("/", &status, &head), HasSubstr("agentd ui"));
  EXPECT_EQ(status, 200);
  EXPECT_THAT(head, HasSubstr("Cache-Control: no-cache"));
  EXPECT_THAT(get("/assets/app-1234.js", &status, &head), HasSubstr("console.log"));
  EXPECT_THAT(head, HasSubstr("text/javascript"));
  EXPECT_THAT(head, HasSubstr("immutable"));
  for (const char* path : {"/agents", "/metric", "/readz", "/assets/missing.js", "/index"}) {
    EXPECT_THAT(get(path, &status), Not(HasSubstr("agentd ui"))) << path;
    EXPECT_EQ(status, 404) << path;
  }
  EXPECT_EQ(get("/livez", &status), "ok\n");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(get("/readyz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(get("/healthz", &status), "ok\n");  // kept for existing probes
  EXPECT_EQ(status, 200);
  EXPECT_THAT(get("/../secret.txt", &status), Not(HasSubstr("not for the web")));
  EXPECT_EQ(status, 400);
}

// OpenWorkspace runs ui.editor on agentd's host, so only once a person approves it.
class OpenInEditorTest : public WebTest {
 protected:
  void SetUp() override {
    // The "editor" appends what it was asked to open, a line per run: a run that should
    // not have happened shows as a line too many, whenever it came.
    WriteFile(editor_, absl::StrCat("#!/bin/sh\necho \"$@\" >> '", opened_, "'\n"));
    ASSERT_EQ(chmod(editor_.c_str(), 0755), 0);
    std::string config = dir_.Join("agentd.yaml");
    WriteFile(config, absl::StrCat("ui: {editor: [\"", editor_, "\", --new-window]}\n",
                                   "roles:\n  ceo: {command: [sleep, \"3600\"]}\nagents: []\n"));
    // A secret in agentd's environment, which the editor must not inherit.
    ASSERT_NO_FATAL_FAILURE(
        StartDaemon({"--config", config}, {"AGENTD_TEST_SECRET=not-for-the-editor"}));
    v1::SubmitGoalRequest goal;
    goal.set_text("Open me");
    v1::SubmitGoalResponse submitted;
    grpc::Status s = client_->tasks().SubmitGoal(Ctx().get(), goal, &submitted);
    ASSERT_TRUE(s.ok()) << s.error_message();
    goal_ = submitted.goal().id();
    path_ = submitted.goal().workspace().path();
    ASSERT_FALSE(path_.empty());
  }
  // OpenWorkspace through the gRPC-web bridge, as the UI calls it.
  void Open(v1::OpenWorkspaceResponse* resp) {
    v1::OpenWorkspaceRequest req;
    req.set_task_id(goal_);
    std::vector<Frame> frames = Call("/agentd.v1.TaskService/OpenWorkspace", req, {Bearer()});
    std::string message;
    ASSERT_EQ(GrpcStatus(frames, &message), 0) << message;
    ASSERT_FALSE(frames.empty());
    ASSERT_TRUE(resp->ParseFromString(frames[0].payload));
    ASSERT_FALSE(resp->consent_request_id().empty());
  }
  // Every consent request, decided or not, by id.
  std::map<std::string, v1::ConsentRequest> Consents() {
    v1::ListConsentRequestsRequest req;
    req.set_include_decided(true);
    v1::ListConsentRequestsResponse resp;
    grpc::Status s = client_->consent().ListConsentRequests(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::map<std::string, v1::ConsentRequest> out;
    for (const v1::ConsentRequest& r : resp.consent_requests()) out[r.id()] = r;
    return out;
  }
  // The audit log's workspace.open entries.
  std::vector<v1::AuditEntry> Opens() {
    v1::ListAuditEntriesRequest req;
    req.set_action("workspace.open");
    v1::ListAuditEntriesResponse resp;
    grpc::Status s = client_->audit().ListAuditEntries(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.entries().begin(), resp.entries().end()};
  }
  RunResult Consent(const std::string& decision, const std::string& id) {
    return RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "consent", decision, id});
  }
  // What one run of the editor for the goal's workspace writes.
  std::string OneRun() const { return "--new-window " + path_ + "\n"; }

  std::string editor_ = dir_.Join("editor.sh"), opened_ = dir_.Join("opened");
  std::string goal_, path_;
};

TEST_F(OpenInEditorTest, RunsTheEditorOnlyOnceAPersonApproves) {
  v1::OpenWorkspaceResponse resp;
  ASSERT_NO_FATAL_FAILURE(Open(&resp));
  EXPECT_EQ(resp.path(), path_);
  EXPECT_THAT(resp.argv(), ::testing::ElementsAre(editor_, "--new-window", path_));
  // The request is there for a person to decide, and by then nothing has run. (A run
  // that came later still shows: it would be a second line below.)
  std::map<std::string, v1::ConsentRequest> consents = Consents();
  ASSERT_TRUE(consents.count(resp.consent_request_id())) << resp.consent_request_id();
  const v1::ConsentRequest& asked = consents[resp.consent_request_id()];
  EXPECT_EQ(asked.status(), v1::CONSENT_STATUS_PENDING);
  EXPECT_EQ(asked.kind(), v1::CONSENT_KIND_OPEN_EDITOR);
  EXPECT_EQ(ReadFileOrEmpty(opened_), "") << "the editor ran before anyone decided";
  EXPECT_THAT(Opens(), ::testing::IsEmpty());

  RunResult approve = Consent("approve", resp.consent_request_id());
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(opened_); },
                           [&](const std::string& got) { return got == OneRun(); },
                           absl::Seconds(10)))
      << daemon_.log();
  std::vector<v1::AuditEntry> opens = Opens();
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(Detail(opens[0], "request"), resp.consent_request_id());
  EXPECT_EQ(Detail(opens[0], "requested_by"), "human:web");  // who asked: the bridge
  EXPECT_EQ(opens[0].actor().kind(), v1::ACTOR_KIND_HUMAN);  // who approved: agentctl
  EXPECT_EQ(opens[0].actor().id(), "human:local");
  EXPECT_EQ(ReadFileOrEmpty(opened_), OneRun()) << "the editor ran more than once";
}

TEST_F(OpenInEditorTest, ADenialNeverRunsTheEditor) {
  v1::OpenWorkspaceResponse denied;
  ASSERT_NO_FATAL_FAILURE(Open(&denied));
  RunResult deny = Consent("deny", denied.consent_request_id());
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  // The denial is recorded: whatever reacts to it has run.
  std::map<std::string, v1::ConsentRequest> consents = Consents();
  ASSERT_TRUE(consents.count(denied.consent_request_id()));
  EXPECT_EQ(consents[denied.consent_request_id()].status(), v1::CONSENT_STATUS_DENIED);
  EXPECT_EQ(ReadFileOrEmpty(opened_), "") << "the editor ran on a denial";

  // The positive control: the same open, approved, runs the editor — once. A run for the
  // denial, however late, would be a second line, and a second audit entry.
  v1::OpenWorkspaceResponse approved;
  ASSERT_NO_FATAL_FAILURE(Open(&approved));
  ASSERT_NE(approved.consent_request_id(), denied.consent_request_id());
  RunResult approve = Consent("approve", approved.consent_request_id());
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(opened_); },
                           [&](const std::string& got) { return got == OneRun(); },
                           absl::Seconds(10)))
      << daemon_.log();
  std::vector<v1::AuditEntry> opens = Opens();
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(Detail(opens[0], "request"), approved.consent_request_id());
  EXPECT_EQ(ReadFileOrEmpty(opened_), OneRun());
}

// The editor runs on a person's behalf with a minimal environment: none of agentd's
// variables, tokens or keys (common/hardening.h MinimalEnvironment).
TEST_F(OpenInEditorTest, TheEditorGetsAMinimalEnvironment) {
  std::string env_file = dir_.Join("editor.env");
  WriteFile(editor_,
            absl::StrCat("#!/bin/sh\nenv > '", env_file, "'\necho \"$@\" >> '", opened_, "'\n"));
  v1::OpenWorkspaceResponse resp;
  ASSERT_NO_FATAL_FAILURE(Open(&resp));
  RunResult approve = Consent("approve", resp.consent_request_id());
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  ASSERT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(opened_); },
                           [&](const std::string& got) { return got == OneRun(); },
                           absl::Seconds(10)))
      << daemon_.log();
  std::string env = ReadFileOrEmpty(env_file);
  EXPECT_THAT(env, HasSubstr("PATH="));
  EXPECT_THAT(env, Not(HasSubstr("not-for-the-editor")));
  for (absl::string_view line : absl::StrSplit(env, '\n', absl::SkipEmpty())) {
    std::string name(line.substr(0, line.find('=')));
    bool allowed = name == "PATH" || name == "HOME" || name == "LANG" || name == "TZ" ||
                   name == "USER" || name == "LOGNAME" || name == "TERM" ||
                   absl::StartsWith(name, "LC_") ||
                   // What the shell running the script sets itself.
                   name == "PWD" || name == "OLDPWD" || name == "SHLVL" || name == "_";
    EXPECT_TRUE(allowed) << "the editor inherited " << name;
  }
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// An open goal's budget left is a series while the goal runs (its CEO here never ends).
TEST_F(OpenInEditorTest, MetricsShowWhatIsLeftOfAnOpenGoalsBudget) {
  ASSERT_TRUE(WaitForValue(
      [&] {
        return Metric(absl::StrCat("agentd_goal_budget_remaining_usd{goal=\"", goal_, "\"}"));
      },
      [](double v) { return v == 5; }, absl::Seconds(20)))
      << Metrics();
  EXPECT_EQ(Metric(absl::StrCat("agentd_goal_budget_remaining_tokens{goal=\"", goal_, "\"}")),
            2000000);
  v1::CancelTaskRequest cancel;
  cancel.set_task_id(goal_);
  v1::CancelTaskResponse canceled;
  grpc::Status s = client_->tasks().CancelTask(Ctx().get(), cancel, &canceled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(WaitForValue(
      [&] {
        return Metric(absl::StrCat("agentd_goal_budget_remaining_usd{goal=\"", goal_, "\"}"));
      },
      [](double v) { return v == -1; }, absl::Seconds(20)))
      << "a goal that ended keeps no series\n"
      << Metrics();
}

}  // namespace
}  // namespace agentd::testing
