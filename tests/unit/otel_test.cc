// W3C trace context and the OTLP exporter's configuration (common/otel).
#include <map>
#include <string>

#include "common/otel/exporter.h"
#include "common/otel/trace_context.h"
#include "common/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentd::otel {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST(TraceparentTest, AValidHeaderParsesAndFormatsBackTheSame) {
  const std::string h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::optional<TraceContext> c = ParseTraceparent(h);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(Hex(c->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Hex(c->span_id), "00f067aa0ba902b7");
  EXPECT_EQ(c->flags, 1);
  EXPECT_EQ(FormatTraceparent(*c), h);
  EXPECT_TRUE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
}

TEST(TraceparentTest, MalformedHeadersAreRefused) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",           // no flags
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero span
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",         // short trace
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 has 4
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
           "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
       }) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << bad;
  }
  // A later version is read by its first four fields.
  EXPECT_TRUE(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"));
}

TEST(TraceparentTest, RandomIdsAreNeverZeroAndDiffer) {
  EXPECT_NE(RandomTraceId(), TraceId{});
  EXPECT_NE(RandomSpanId(), SpanId{});
  EXPECT_NE(RandomTraceId(), RandomTraceId());
}

TEST(SpanTest, AttributesAreValidUtf8AndReplacedWhenSetAgain) {
  otlp::Span s = NewSpan("chat m", otlp::Span::SPAN_KIND_CLIENT, RandomTraceId(), RandomSpanId(),
                         std::nullopt, absl::FromUnixSeconds(10));
  SetAttribute(&s, "k", std::string("bad \xff byte"));
  SetAttribute(&s, "k", std::string("again \xc3"));
  SetAttribute(&s, "n", int64_t{3});
  ASSERT_EQ(s.attributes_size(), 2);
  EXPECT_TRUE(IsValidUtf8(s.attributes(0).value().string_value()));
  EXPECT_THAT(s.attributes(0).value().string_value(), HasSubstr("again"));
  EndSpan(&s, absl::FromUnixSeconds(5), "it broke", "timeout");  // before the start
  EXPECT_EQ(s.end_time_unix_nano(), s.start_time_unix_nano());
  EXPECT_EQ(s.status().code(), otlp::Status::STATUS_CODE_ERROR);
}

TEST(ConventionsTest, TheLatestAreChosenOnlyWhenOptedIn) {
  EXPECT_FALSE(LatestConventionsRequested(nullptr));
  EXPECT_FALSE(LatestConventionsRequested("http"));
  EXPECT_TRUE(LatestConventionsRequested("http, gen_ai_latest_experimental"));
  EXPECT_STREQ(Conventions{true}.provider_key(), "gen_ai.provider.name");
  EXPECT_STREQ(Conventions{false}.provider_key(), "gen_ai.system");
}

class ExporterOptionsTest : public ::testing::Test {
 protected:
  absl::StatusOr<ExporterOptions> From(const std::string& config) {
    return ExporterOptionsFrom(config, "agentd", [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    });
  }
  std::map<std::string, std::string> env_;
};

TEST_F(ExporterOptionsTest, NoEndpointMeansTracingIsOff) {
  absl::StatusOr<ExporterOptions> o = From("");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint, "");
}

TEST_F(ExporterOptionsTest, EndpointsFollowTheSpecificationsRules) {
  EXPECT_EQ(From("http://c:4318")->endpoint, "http://c:4318/v1/traces");
  EXPECT_EQ(From("http://c:4318/")->endpoint, "http://c:4318/v1/traces");
  EXPECT_EQ(From("http://c:4318/v1/traces")->endpoint, "http://c:4318/v1/traces");
  env_["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://c:4318/base";
  EXPECT_EQ(From("")->endpoint, "https://c:4318/base/v1/traces");
  env_["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://t:9/custom";  // used as it is
  EXPECT_EQ(From("")->endpoint, "http://t:9/custom");
  EXPECT_EQ(From("http://cfg:1")->endpoint, "http://cfg:1/v1/traces");  // config wins
  env_["OTEL_SDK_DISABLED"] = "true";
  EXPECT_EQ(From("http://cfg:1")->endpoint, "");
}

TEST_F(ExporterOptionsTest, HeadersResourceAndBatchingComeFromTheStandardVariables) {
  env_["OTEL_EXPORTER_OTLP_HEADERS"] = "Authorization=Bearer%20abc, x-team=a";
  env_["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = "x-team=b";
  env_["OTEL_EXPORTER_OTLP_TIMEOUT"] = "2500";
  env_["OTEL_BSP_MAX_QUEUE_SIZE"] = "100";
  env_["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "500";
  env_["OTEL_BSP_SCHEDULE_DELAY"] = "200";
  env_["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=ci,service.name=from-attrs";
  absl::StatusOr<ExporterOptions> o = From("http://c:4318");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->headers, ::testing::UnorderedElementsAre(Pair("Authorization", "Bearer abc"),
                                                          Pair("x-team", "b")));
  EXPECT_EQ(o->timeout, absl::Milliseconds(2500));
  EXPECT_EQ(o->max_queue, 100);
  EXPECT_EQ(o->max_batch, 100);  // never more than the queue holds
  EXPECT_EQ(o->schedule_delay, absl::Milliseconds(200));
  EXPECT_THAT(o->resource, ::testing::ElementsAre(Pair("service.name", "from-attrs"),
                                                  Pair("deployment.environment", "ci")));
  env_["OTEL_SERVICE_NAME"] = "team";
  EXPECT_EQ(From("http://c:4318")->resource[0].second, "team");
}

TEST_F(ExporterOptionsTest, BadValuesAreRefusedNamingTheVariable) {
  env_["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc";
  EXPECT_THAT(From("http://c:4317").status().message(),
              HasSubstr("OTEL_EXPORTER_OTLP_PROTOCOL: \"grpc\" is not supported"));
  env_.clear();
  env_["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] = "soon";
  EXPECT_THAT(From("http://c:4318").status().message(),
              HasSubstr("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: \"soon\""));
  env_.clear();
  env_["OTEL_EXPORTER_OTLP_HEADERS"] = "bad header=1";
  EXPECT_THAT(From("http://c:4318").status().message(), HasSubstr("is not a valid header"));
  env_["OTEL_EXPORTER_OTLP_HEADERS"] = "x=a%0d%0aInjected: 1";
  EXPECT_THAT(From("http://c:4318").status().message(), HasSubstr("is not a valid header"));
  env_.clear();
  EXPECT_THAT(From("ftp://c").status().message(), HasSubstr("is not an http:// or https:// URL"));
}

// A compromised agent's batch: only spans in a trace it was given, under a parent, with an
// id agentd did not make, are kept; nested arrays and overlong attribute lists are cut.
TEST(DecodeAgentSpansTest, OnlySpansInsideTheAgentsGrantAreKept) {
  const TraceId mine = RandomTraceId(), other = RandomTraceId();
  const SpanId task = RandomSpanId();
  AgentGrant grant;
  grant.traces.insert(std::string(mine.begin(), mine.end()));
  grant.reserved_spans.insert(std::string(task.begin(), task.end()));
  otlp::ScopeSpans batch;
  auto add = [&](const TraceId& t, const SpanId& id, std::optional<SpanId> parent) {
    *batch.add_spans() =
        NewSpan("execute_tool x", otlp::Span::SPAN_KIND_INTERNAL, t, id, parent, absl::Now());
    EndSpan(batch.mutable_spans(batch.spans_size() - 1), absl::Now());
  };
  add(mine, RandomSpanId(), task);          // kept
  add(other, RandomSpanId(), task);         // another trace
  add(mine, task, task);                    // agentd's own id
  add(mine, RandomSpanId(), std::nullopt);  // a root
  otlp::Span* big = batch.mutable_spans(0);
  for (int i = 0; i < 300; ++i) SetAttribute(big, "k" + std::to_string(i), int64_t{i});
  int64_t dropped = 0;
  std::vector<otlp::Span> kept = DecodeAgentSpans(batch.SerializeAsString(), &grant, &dropped);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(dropped, 3);
  EXPECT_EQ(kept[0].attributes_size(), 128);
  EXPECT_EQ(kept[0].dropped_attributes_count(), 300u - 128u);
  dropped = 0;  // without a grant (agentd's own checks only) all four are well formed
  EXPECT_EQ(DecodeAgentSpans(batch.SerializeAsString(), nullptr, &dropped).size(), 4u);
  EXPECT_EQ(dropped, 0);
}

TEST(SpanExporterTest, AnAgentsBatchTooLargeOrUndecodableIsDroppedAndCounted) {
  ExporterOptions o;
  o.endpoint = "http://127.0.0.1:9/v1/traces";  // never reached: nothing valid is queued
  o.resource = {{"service.name", "agentd"}};
  o.timeout = absl::Milliseconds(200);
  SpanExporter e(o);
  EXPECT_FALSE(e.AddFromAgent("a", "coder", std::string((1 << 20) + 1, 'x'), 0, {}));
  EXPECT_EQ(e.dropped(), 1);
  EXPECT_TRUE(e.AddFromAgent("a", "coder", "\xff\xff\xff not protobuf", 2, {}));
  EXPECT_TRUE(e.Flush(absl::Seconds(10)));
  EXPECT_EQ(e.dropped(), 4);  // 1 too large, 2 the agent dropped, 1 undecodable
  EXPECT_EQ(e.exported(), 0);
}

}  // namespace
}  // namespace agentd::otel
