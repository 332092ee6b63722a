// The gRPC-web codec, the HTTP listener's request checks and the Prometheus text
// rendering: pure functions, checked byte by byte against the formats' specifications.
#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/metrics.h"
#include "manager/web/grpc_web.h"
#include "manager/web/http_checks.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;

TEST(GrpcWebTest, FramesCarryFlagAndBigEndianLength) {
  std::string f = grpc_web::Frame(grpc_web::kDataFrame, std::string(300, 'x'));
  ASSERT_EQ(f.size(), 305u);
  EXPECT_EQ(f.substr(0, 5), std::string("\x00\x00\x00\x01\x2c", 5));
  std::string t = grpc_web::TrailerFrame(5, "no such thing: 100% gone\n");
  EXPECT_EQ(static_cast<uint8_t>(t[0]), 0x80);
  EXPECT_EQ(t.substr(5), "grpc-status:5\r\ngrpc-message:no such thing: 100%25 gone%0A\r\n");
  EXPECT_EQ(grpc_web::PercentDecode("100%25 gone%0A"), "100% gone\n");
}

TEST(GrpcWebTest, DecodesBinaryAndConcatenatedTextBodies) {
  std::string two = grpc_web::Frame(0, "hello") + grpc_web::Frame(0, "");
  auto binary = grpc_web::DecodeRequest(two, false);
  ASSERT_TRUE(binary.ok()) << binary.status();
  EXPECT_EQ(*binary, (std::vector<std::string>{"hello", ""}));
  // Text mode: each frame base64'd on its own, padding in the middle of the body.
  std::string text = absl::Base64Escape(grpc_web::Frame(0, "hello")) +
                     absl::Base64Escape(grpc_web::Frame(0, "world!"));
  auto decoded = grpc_web::DecodeRequest(text, true);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, (std::vector<std::string>{"hello", "world!"}));
}

TEST(GrpcWebTest, RejectsMalformedRequestsWithWhereTheyBreak) {
  auto cut = grpc_web::DecodeRequest(grpc_web::Frame(0, "hello").substr(0, 7), false);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cut.status().message(), HasSubstr("says 5 bytes but 2 follow"));
  EXPECT_FALSE(grpc_web::DecodeRequest(grpc_web::Frame(0x80, "x"), false).ok());
  EXPECT_EQ(grpc_web::DecodeRequest(grpc_web::Frame(0x01, "x"), false).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_FALSE(grpc_web::DecodeRequest("!!!!", true).ok());
}

TEST(GrpcWebTest, ParsesGrpcTimeoutUnits) {
  EXPECT_EQ(*grpc_web::ParseTimeout("10S"), absl::Seconds(10));
  EXPECT_EQ(*grpc_web::ParseTimeout("250m"), absl::Milliseconds(250));
  EXPECT_EQ(*grpc_web::ParseTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(*grpc_web::ParseTimeout("7n"), absl::Nanoseconds(7));
  for (const char* bad : {"", "S", "10", "10s", "123456789S", "-1S", "1.5S"}) {
    EXPECT_FALSE(grpc_web::ParseTimeout(bad).ok()) << bad;
  }
}

TEST(MetricsTest, RendersCountersGaugesAndCumulativeHistograms) {
  MetricsRegistry r;
  CounterFamily* c = r.AddCounter("agentd_things_total", "Things.", {"kind"});
  GaugeFamily* g = r.AddGauge("agentd_level", "Level.");
  HistogramFamily* h = r.AddHistogram("agentd_wait_seconds", "Waits.", {"op"}, {0.1, 1});
  c->Add({"a\"b\n"}, 2);
  c->Add({"a\"b\n"});
  c->Add({"x"}, -5);  // counters never go down: ignored
  g->Set({}, 0.25);
  h->Observe({"read"}, 0.05);
  h->Observe({"read"}, 0.5);
  h->Observe({"read"}, 3);
  std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE agentd_things_total counter\n"));
  EXPECT_THAT(text, HasSubstr("agentd_things_total{kind=\"a\\\"b\\n\"} 3\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("kind=\"x\"")));
  EXPECT_THAT(text, HasSubstr("agentd_level 0.25\n"));
  EXPECT_THAT(text, HasSubstr("agentd_wait_seconds_bucket{op=\"read\",le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("agentd_wait_seconds_bucket{op=\"read\",le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("agentd_wait_seconds_bucket{op=\"read\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("agentd_wait_seconds_sum{op=\"read\"} 3.55\n"));
  EXPECT_THAT(text, HasSubstr("agentd_wait_seconds_count{op=\"read\"} 3\n"));
}

// DNS rebinding: a page whose name was pointed at 127.0.0.1 sends its own name as Host.
TEST(HttpChecksTest, HostMustNameThisListener) {
  namespace ip = boost::asio::ip;
  ip::address local = ip::make_address("10.0.0.5"), bound = ip::make_address("0.0.0.0");
  std::vector<std::string> names = {"agentd.lan"};
  for (const char* ok : {"localhost", "LocalHost.:7878", "127.0.0.1:7878", "127.9.9.9", "[::1]:80",
                         "[::ffff:127.0.0.1]", "10.0.0.5:7878", "agentd.lan", "AGENTD.LAN.:1"}) {
    EXPECT_TRUE(web::HostAllowed(ok, local, bound, names)) << ok;
  }
  for (const char* bad : {"evil.example", "evil.example:7878", "localhost.evil.example", "10.0.0.6",
                          "[::2]", "", "agentd.lan.evil", "127.0.0.1.nip.io"}) {
    EXPECT_FALSE(web::HostAllowed(bad, local, bound, names)) << bad;
  }
  EXPECT_EQ(web::HostName("[::1]:7878"), "::1");
  EXPECT_EQ(web::HostName("[::1"), "::1");
}

TEST(HttpChecksTest, CookiesQueriesAndBearerTokensAreFoundByExactName) {
  EXPECT_EQ(web::CookieValue("a=1; agentd_session=s3; b=2", "agentd_session"), "s3");
  EXPECT_EQ(web::CookieValue("xagentd_session=s3", "agentd_session"), std::nullopt);
  EXPECT_EQ(web::CookieValue("", "agentd_session"), std::nullopt);
  EXPECT_EQ(web::QueryParam("a=1&code=xyz&code=2", "code"), "xyz");
  EXPECT_EQ(web::QueryParam("tokens=1", "token"), std::nullopt);
  EXPECT_EQ(web::BearerToken("Bearer agentd_1"), "agentd_1");
  EXPECT_EQ(web::BearerToken("bEaReR agentd_1"), "agentd_1");
  EXPECT_EQ(web::BearerToken("Basic dXNlcg=="), std::nullopt);
  EXPECT_EQ(web::BearerToken("Bearer"), std::nullopt);
}

TEST(HttpChecksTest, OnlyServiceSlashMethodPathsNameAMethod) {
  auto m = web::MethodOfPath("/agentd.v1.SystemService/GetInfo");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->first, "agentd.v1.SystemService");
  EXPECT_EQ(m->second, "GetInfo");
  for (const char* bad : {"", "/", "//", "/a/", "//b", "/a/b/c", "a/b", "/a"}) {
    EXPECT_FALSE(web::MethodOfPath(bad).has_value()) << bad;
  }
}

TEST(HttpChecksTest, StaticPathsStayInsideTheUiDirectory) {
  EXPECT_EQ(web::StaticFileOf("/"), "/index.html");
  EXPECT_EQ(web::StaticFileOf("/assets/app-1a2b.js"), "/assets/app-1a2b.js");
  for (absl::string_view bad :
       {absl::string_view("/../etc/passwd"), absl::string_view("/assets/..%2f/x"),
        absl::string_view("relative"), absl::string_view(""), absl::string_view("/a\0b", 4)}) {
    EXPECT_FALSE(web::StaticFileOf(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace agentd
