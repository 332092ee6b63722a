// web_bench: agentd's gRPC-web bridge beside native gRPC, against one daemon, in one run:
//   - unary calls per second (SystemService.GetVersion), N clients each on its own
//     connection: gRPC over the unix socket vs gRPC-web over HTTP/1.1 keep-alive;
//   - stream event latency: one WatchEvents stream on each transport, events made by
//     SendMessage one at a time, time from the call to each stream's frame;
//   - 50 gRPC-web streams held open: unary gRPC-web calls per second with them vs
//     without, and agentd's thread count (an asynchronous listener adds none per stream).
//   web_bench [--quick]
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/lock_checks.h"
#include "dev/bench/bench_util.h"
#include "grpcpp/client_context.h"
#include "tests/support/daemon.h"
#include "tests/support/http_conn.h"

namespace agentd::bench {
namespace {

using testing::DataFrame;
using testing::Frames;
using testing::GrpcStatus;
using testing::HttpConn;

struct Bench {
  testing::TempDir dir;
  testing::Daemon daemon{dir};
  int port = 0;
  std::string bearer;
};

// Calls per second with `clients` threads running `call` (which returns false on error)
// for `duration`.
double Rate(int clients, absl::Duration duration,
            const std::function<std::function<bool()>()>& make) {
  std::atomic<int64_t> calls{0};
  std::atomic<bool> failed{false};
  absl::Time end = absl::Now() + duration;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      std::function<bool()> call = make();
      while (absl::Now() < end) {
        if (!call()) {
          failed = true;
          return;
        }
        ++calls;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) std::fprintf(stderr, "web_bench: a call failed\n");
  return static_cast<double>(calls) / absl::ToDoubleSeconds(duration);
}

std::function<std::function<bool()>()> NativeUnary(Bench& b) {
  auto channel = b.daemon.UnixChannel();
  return [channel] {
    auto stub = std::shared_ptr<v1::SystemService::Stub>(v1::SystemService::NewStub(channel));
    return [stub] {
      grpc::ClientContext ctx;
      v1::GetVersionResponse resp;
      return stub->GetVersion(&ctx, v1::GetVersionRequest(), &resp).ok();
    };
  };
}

std::function<std::function<bool()>()> WebUnary(Bench& b) {
  return [&b] {
    auto conn = std::make_shared<HttpConn>(b.port);
    std::string body = DataFrame(v1::GetVersionRequest());
    return [conn, body, &b] {
      conn->Reset();
      return conn->Send("POST", "/agentd.v1.SystemService/GetVersion",
                        {b.bearer, "Content-Type: application/grpc-web+proto"}, body) &&
             conn->ReadHead() && conn->ReadAll() && GrpcStatus(Frames(conn->body())) == 0;
    };
  };
}

int Threads(pid_t pid) { return static_cast<int>(ProcKiB(pid, "status", "Threads")); }

int Main(int argc, char** argv) {
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  absl::Duration window = quick ? absl::Milliseconds(700) : absl::Seconds(3);
  int events = quick ? 50 : 300;
  std::printf("web_bench (%d cores)\n\n", static_cast<int>(std::thread::hardware_concurrency()));

  Bench b;
  if (!b.daemon.Start({"--http", "127.0.0.1:0"})) {
    std::fprintf(stderr, "web_bench: agentd did not start:\n%s\n", b.daemon.log().c_str());
    return 1;
  }
  {
    auto stub = v1::SystemService::NewStub(b.daemon.UnixChannel());
    grpc::ClientContext ctx;
    v1::GetInfoResponse info;
    if (!stub->GetInfo(&ctx, v1::GetInfoRequest(), &info).ok()) return 1;
    std::string http = info.paths().http();
    (void)absl::SimpleAtoi(http.substr(http.rfind(':') + 1), &b.port);
  }
  b.bearer = "Authorization: Bearer " + b.daemon.admin_token();
  pid_t pid = b.daemon.process()->pid();

  // Unary: the same call, the same number of clients, back to back, twice each.
  for (int clients : {1, 4}) {
    double native =
        std::max(Rate(clients, window, NativeUnary(b)), Rate(clients, window, NativeUnary(b)));
    double web = std::max(Rate(clients, window, WebUnary(b)), Rate(clients, window, WebUnary(b)));
    std::printf(
        "unary GetVersion, %d client(s)   gRPC-web %8.0f /s   native gRPC %8.0f /s   ratio %.2f\n",
        clients, web, native, web / native);
    Report({.bench = "web_bench",
            .name = absl::StrCat("gRPC-web unary, ", clients, " client(s)"),
            .value = web,
            .unit = "calls/s",
            .baseline = "native gRPC",
            .baseline_value = native,
            .budget = clients == 1 ? Budget::RatioAtLeast(0.8) : Budget{}});
  }

  // Stream latency: both streams watch from now on; each SendMessage makes one event.
  std::mutex mu;
  std::vector<absl::Time> native_seen, web_seen;
  std::atomic<bool> stop{false};
  auto events_stub = v1::EventService::NewStub(b.daemon.UnixChannel());
  grpc::ClientContext native_ctx;
  v1::WatchEventsRequest watch;
  watch.set_after_seq(-1);
  auto reader = events_stub->WatchEvents(&native_ctx, watch);
  std::thread native_thread([&] {
    v1::WatchEventsResponse ev;
    while (reader->Read(&ev)) {
      std::lock_guard lock(mu);
      native_seen.push_back(absl::Now());
    }
  });
  HttpConn web_stream(b.port);
  web_stream.Send("POST", "/agentd.v1.EventService/WatchEvents",
                  {b.bearer, "Content-Type: application/grpc-web+proto"}, DataFrame(watch));
  if (!web_stream.ReadHead()) return 1;
  std::thread web_thread([&] {
    size_t frames = 0;
    web_stream.ReadUntil(
        [&](const std::string& body) {
          size_t n = Frames(body).size();
          if (n > frames) {
            std::lock_guard lock(mu);
            for (; frames < n; ++frames) web_seen.push_back(absl::Now());
          }
          return stop.load();
        },
        absl::Minutes(10));
  });
  auto messages = v1::MessageService::NewStub(b.daemon.UnixChannel());
  // A stream's response head comes before agentd has started watching for it: events are
  // measured once both streams have seen one (sent again until they have).
  auto send_event = [&](const std::string& body) {
    grpc::ClientContext ctx;
    v1::SendMessageRequest req;
    req.set_to("human");
    req.set_body(body);
    v1::SendMessageResponse resp;
    return messages->SendMessage(&ctx, req, &resp).ok();
  };
  bool both = false;
  for (absl::Time warm = absl::Now() + absl::Seconds(10); !both && absl::Now() < warm;) {
    if (!send_event("warm-up")) break;
    for (absl::Time wait = absl::Now() + absl::Milliseconds(100); !both && absl::Now() < wait;) {
      std::this_thread::yield();
      std::lock_guard lock(mu);
      both = !native_seen.empty() && !web_seen.empty();
    }
  }
  if (!both) {
    std::fprintf(stderr, "web_bench: the streams saw no event\n");
    return 1;
  }
  std::vector<double> native_ms, web_ms;
  for (int i = 0; i < events; ++i) {
    size_t n0, w0;
    {
      std::lock_guard lock(mu);
      n0 = native_seen.size();
      w0 = web_seen.size();
    }
    absl::Time t0 = absl::Now();
    if (!send_event(absl::StrCat("event ", i))) {
      std::fprintf(stderr, "web_bench: SendMessage failed\n");
      return 1;
    }
    absl::Time deadline = t0 + absl::Seconds(10);
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (native_seen.size() > n0 && web_seen.size() > w0) {
          native_ms.push_back(absl::ToDoubleMilliseconds(native_seen[n0] - t0));
          web_ms.push_back(absl::ToDoubleMilliseconds(web_seen[w0] - t0));
          break;
        }
      }
      if (absl::Now() > deadline) {
        std::fprintf(stderr, "web_bench: an event did not arrive on both streams\n");
        return 1;
      }
      std::this_thread::yield();
    }
  }
  stop = true;
  native_ctx.TryCancel();
  {  // one more event wakes the gRPC-web reader to see `stop`
    grpc::ClientContext ctx;
    v1::SendMessageRequest req;
    req.set_to("human");
    req.set_body("done");
    v1::SendMessageResponse resp;
    (void)messages->SendMessage(&ctx, req, &resp);
  }
  native_thread.join();
  web_thread.join();
  web_stream.Close();
  std::printf(
      "stream event latency (median of %d)   gRPC-web %.3f ms   native gRPC %.3f ms   ratio %.2f\n",
      events, Median(web_ms), Median(native_ms), Median(web_ms) / Median(native_ms));
  Report({.bench = "web_bench",
          .name = "stream event latency",
          .value = Median(web_ms),
          .unit = "ms",
          .baseline = "native gRPC",
          .baseline_value = Median(native_ms),
          .budget = Budget::RatioAtMost(1.1),
          .note = absl::StrCat("median of ", events)});

  // 50 open gRPC-web streams: do unary calls still get through, and at what rate?
  int threads_before = Threads(pid);
  double alone = Rate(4, window, WebUnary(b));
  std::vector<std::unique_ptr<HttpConn>> streams;
  for (int i = 0; i < 50; ++i) {
    streams.push_back(std::make_unique<HttpConn>(b.port));
    streams.back()->Send("POST", "/agentd.v1.EventService/WatchEvents",
                         {b.bearer, "Content-Type: application/grpc-web+proto"}, DataFrame(watch));
    if (!streams.back()->ReadHead()) {
      std::fprintf(stderr, "web_bench: stream %d did not open\n", i);
      return 1;
    }
  }
  int threads_open = Threads(pid);
  double with_streams = Rate(4, window, WebUnary(b));
  std::printf(
      "unary gRPC-web, 4 clients, 50 streams open   %8.0f /s   without them %8.0f /s   ratio "
      "%.2f\n",
      with_streams, alone, with_streams / alone);
  Report({.bench = "web_bench",
          .name = "gRPC-web unary, 4 clients, 50 streams open",
          .value = with_streams,
          .unit = "calls/s",
          .baseline = "no streams open",
          .baseline_value = alone});
  std::printf("agentd threads   %d with 50 streams open, %d before\n", threads_open,
              threads_before);
  streams.clear();
  b.daemon.Stop();
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) {
  agentd::ConfigureLockChecks();  // the baselines and clients as agentd's own processes run
  return agentd::bench::Main(argc, argv);
}
