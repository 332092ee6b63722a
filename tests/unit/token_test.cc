#include "common/token.h"

#include <sys/stat.h>

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;

TEST(TokenTest, NewTokensAreLongAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string t = NewToken();
    EXPECT_EQ(t.size(), 7u + 64u);
    EXPECT_EQ(t.substr(0, 7), "agentd_") << t;
    EXPECT_TRUE(seen.insert(t).second);
  }
}

TEST(TokenTest, TokenFileIsCreated0600AndReadBackTheSame) {
  testing::TempDir dir;
  std::string path = dir.Join("admin.token");
  absl::StatusOr<std::string> t1 = LoadOrCreateTokenFile(path);
  ASSERT_TRUE(t1.ok()) << t1.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<std::string> t2 = LoadOrCreateTokenFile(path);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t1, *t2);
}

TEST(TokenTest, GroupOrWorldReadableTokenFileIsRefusedWithTheFix) {
  testing::TempDir dir;
  std::string path = dir.Join("admin.token");
  ASSERT_TRUE(LoadOrCreateTokenFile(path).ok());
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  absl::StatusOr<std::string> t = ReadTokenFile(path);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("chmod 600 " + path));
}

TEST(TokenTest, EqualityIsExact) {
  EXPECT_TRUE(TokenEquals("agentd_abc", "agentd_abc"));
  EXPECT_FALSE(TokenEquals("agentd_abc", "agentd_abd"));
  EXPECT_FALSE(TokenEquals("agentd_abc", "agentd_ab"));
  EXPECT_FALSE(TokenEquals("", "x"));
}

}  // namespace
}  // namespace agentd
