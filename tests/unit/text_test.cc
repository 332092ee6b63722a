#include "common/text.h"

#include "gtest/gtest.h"

namespace agentd {
namespace {

TEST(TextTest, ValidUtf8KeepsWellFormedTextAndReplacesBadBytes) {
  EXPECT_EQ(ValidUtf8("plain ascii\t"), "plain ascii\t");
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(ValidUtf8("a\xff"
                      "b"),
            "a\xef\xbf\xbd"
            "b");
  // An overlong encoding of '/', a surrogate, and a sequence cut short are not UTF-8.
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(ValidUtf8("x\xe2\x82"), "x\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(TextTest, EscapeForTerminalEscapesControlAndInvalidBytes) {
  EXPECT_EQ(EscapeForTerminal("tab\tkept, caf\xc3\xa9 too"), "tab\tkept, caf\xc3\xa9 too");
  EXPECT_EQ(EscapeForTerminal(std::string("\x1b[31mred\0\x7f\xff", 11)),
            "\\x1b[31mred\\x00\\x7f\\xff");
}

}  // namespace
}  // namespace agentd
