// The gRPC-web codec and the Prometheus text rendering: pure functions, checked byte by
// byte against the formats' specifications.
#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/metrics.h"
#include "manager/web/grpc_web.h"

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

}  // namespace
}  // namespace agentd
