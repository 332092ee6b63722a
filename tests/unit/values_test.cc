#include "common/values.h"

#include <map>

#include "gtest/gtest.h"

namespace agentd {
namespace {

TEST(ParseDurationTest, AcceptsUnitsAndCompoundValues) {
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseDuration("5m"), absl::Minutes(5));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration(" 0s "), absl::ZeroDuration());
}

TEST(ParseDurationTest, RejectsMissingUnitNegativeAndGarbageWithTheText) {
  for (const char* bad : {"10", "0", "5x", "", "inf", "-1s", "ten seconds"}) {
    absl::StatusOr<absl::Duration> d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find(std::string("\"") + bad + "\""), absl::string_view::npos)
        << d.status();
  }
}

TEST(ParseByteSizeTest, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseByteSize("64MiB"), int64_t{64} << 20);
  EXPECT_EQ(*ParseByteSize("4KiB"), 4096);
  EXPECT_EQ(*ParseByteSize("1GiB"), int64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("10MB"), 10000000);
  EXPECT_EQ(*ParseByteSize("512"), 512);
  EXPECT_EQ(*ParseByteSize("512B"), 512);
}

TEST(ParseByteSizeTest, RejectsUnknownUnits) {
  EXPECT_FALSE(ParseByteSize("64 potatoes").ok());
  EXPECT_FALSE(ParseByteSize("MiB").ok());
  EXPECT_FALSE(ParseByteSize("-5MiB").ok());
}

class ExpandEnvTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> vars_ = {{"HOME", "/home/a"}, {"EMPTY", ""}};
  std::function<std::optional<std::string>(absl::string_view)> lookup_ =
      [this](absl::string_view n) -> std::optional<std::string> {
    auto it = vars_.find(std::string(n));
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  };
};

TEST_F(ExpandEnvTest, ExpandsSetVariablesAndFallbacks) {
  EXPECT_EQ(*ExpandEnv("${HOME}/x", lookup_), "/home/a/x");
  EXPECT_EQ(*ExpandEnv("${NOPE:-/tmp}/x", lookup_), "/tmp/x");
  EXPECT_EQ(*ExpandEnv("${EMPTY:-fb}", lookup_), "fb");
  EXPECT_EQ(*ExpandEnv("${EMPTY}", lookup_), "");
  EXPECT_EQ(*ExpandEnv("cost $$5 and $HOME", lookup_), "cost $5 and $HOME");
}

TEST_F(ExpandEnvTest, UnsetVariableIsAnErrorNamingIt) {
  absl::StatusOr<std::string> r = ExpandEnv("${MISSING_VAR}/x", lookup_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("MISSING_VAR is not set"), absl::string_view::npos);
}

TEST_F(ExpandEnvTest, UnterminatedAndBadNamesAreErrors) {
  EXPECT_FALSE(ExpandEnv("${HOME", lookup_).ok());
  EXPECT_FALSE(ExpandEnv("${1X}", lookup_).ok());
  EXPECT_FALSE(ExpandEnv("${A-B}", lookup_).ok());
}

}  // namespace
}  // namespace agentd

namespace agentd {
namespace {

TEST(FormatByteSizeTest, PicksTheLargestUnitBelow1024) {
  EXPECT_EQ(FormatByteSize(0), "0B");
  EXPECT_EQ(FormatByteSize(1023), "1023B");
  EXPECT_EQ(FormatByteSize(1536), "1.5KiB");
  EXPECT_EQ(FormatByteSize(int64_t{64} << 20), "64.0MiB");
  EXPECT_EQ(FormatByteSize(int64_t{3} << 40), "3.0TiB");
}

}  // namespace
}  // namespace agentd
