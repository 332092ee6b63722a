#include "common/text.h"

#include <algorithm>
#include <cstdint>

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

TEST(TextTest, IsValidUtf8AcceptsWellFormedAndRejectsEveryKindOfBadSequence) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("ascii"));
  EXPECT_TRUE(IsValidUtf8("\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));
  EXPECT_FALSE(IsValidUtf8("caf\xe9"));                  // Latin-1
  EXPECT_FALSE(IsValidUtf8("\xe6\x97"));                 // cut mid-character
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                 // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));             // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));                     // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8(std::string("a\0\xff", 3)));  // NUL is fine, 0xFF is not
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
}

TEST(TextTest, ValidUtf8CountsTheBytesItReplaced) {
  size_t replaced = 99;
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9", &replaced), "caf\xc3\xa9");
  EXPECT_EQ(replaced, 0u);
  EXPECT_EQ(ValidUtf8("caf\xe9 na\xefve", &replaced), "caf\xef\xbf\xbd na\xef\xbf\xbdve");
  EXPECT_EQ(replaced, 2u);
}

TEST(TextTest, Utf8CutPointNeverSplitsACharacter) {
  // "日本語" is three 3-byte characters.
  const std::string cjk = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";
  EXPECT_EQ(Utf8CutPoint(cjk, 100), 9u);
  EXPECT_EQ(Utf8CutPoint(cjk, 9), 9u);
  EXPECT_EQ(Utf8CutPoint(cjk, 8), 6u);
  EXPECT_EQ(Utf8CutPoint(cjk, 7), 6u);
  EXPECT_EQ(Utf8CutPoint(cjk, 6), 6u);
  EXPECT_EQ(Utf8CutPoint(cjk, 5), 3u);
  EXPECT_EQ(Utf8CutPoint(cjk, 1), 0u);
  EXPECT_EQ(Utf8CutPoint("\xf0\x9f\x98\x80", 3), 0u);
  EXPECT_EQ(Utf8CutPoint("ab", 1), 1u);
  // Bytes that are not UTF-8 are cut where asked.
  EXPECT_EQ(Utf8CutPoint("\x80\x80\x80\x80\x80", 3), 3u);
  EXPECT_EQ(Utf8CutPoint("a\xe6\x80\x80\x80", 4), 4u);  // a 3-byte sequence, then a stray
}

TEST(TextTest, Utf8PrefixCutsOnABoundaryAndStaysWithinTheLimit) {
  // A title of 30 CJK characters (90 bytes) cut to 80 with "...": 25 whole characters.
  std::string title;
  for (int i = 0; i < 30; ++i) title += "\xe4\xb8\xad";
  std::string cut = Utf8Prefix(title, 80, "...");
  EXPECT_TRUE(IsValidUtf8(cut));
  EXPECT_LE(cut.size(), 80u);
  EXPECT_EQ(cut.size(), 75u + 3u);
  EXPECT_EQ(cut.substr(75), "...");
  EXPECT_EQ(Utf8Prefix("short", 80, "..."), "short");
  EXPECT_EQ(Utf8Prefix("abcdef", 2, "..."), "ab");  // the marker does not fit
  // Invalid input comes back valid, and still within the limit.
  std::string latin1(100, '\xe9');
  std::string fixed = Utf8Prefix(latin1, 50, "\xe2\x80\xa6");
  EXPECT_TRUE(IsValidUtf8(fixed));
  EXPECT_LE(fixed.size(), 50u);
}

TEST(TextTest, Utf8SuffixStartsOnABoundary) {
  // Output whose cap falls inside "é": the stray continuation byte is dropped.
  EXPECT_EQ(Utf8Suffix("caf\xc3\xa9!", 2), "!");
  EXPECT_EQ(Utf8Suffix("caf\xc3\xa9!", 3), "\xc3\xa9!");
  EXPECT_EQ(Utf8Suffix("\xe6\x97\xa5\xe6\x9c\xac", 4), "\xe6\x9c\xac");
  EXPECT_EQ(Utf8Suffix("short", 100), "short");
  EXPECT_TRUE(IsValidUtf8(Utf8Suffix("\xff\xfe\x80\x80\x80\x80", 5)));
  EXPECT_EQ(Utf8SuffixStart("caf\xc3\xa9!", 2), 5u);
  EXPECT_EQ(Utf8SuffixStart("caf\xc3\xa9!", 100), 0u);
}

// Whatever the bytes, the helpers give valid UTF-8 within their limits (a cheap
// property check here; tests/fuzz/text_fuzz.cc does it at scale).
TEST(TextTest, HelpersGiveValidUtf8ForAnyBytes) {
  uint32_t x = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    int len = round % 23;
    for (int i = 0; i < len; ++i) {
      x = x * 1103515245 + 12345;
      s.push_back(static_cast<char>(x >> 16));
    }
    EXPECT_TRUE(IsValidUtf8(ValidUtf8(s))) << round;
    size_t limit = static_cast<size_t>(round % 11);
    std::string p = Utf8Prefix(s, limit, "~");
    EXPECT_TRUE(IsValidUtf8(p)) << round;
    EXPECT_LE(p.size(), limit) << round;
    EXPECT_TRUE(IsValidUtf8(Utf8Suffix(s, limit))) << round;
    EXPECT_LE(Utf8CutPoint(s, limit), std::min(limit, s.size())) << round;
    if (IsValidUtf8(s)) {
      EXPECT_TRUE(IsValidUtf8(s.substr(0, Utf8CutPoint(s, limit)))) << round;
    }
  }
}

TEST(TextTest, EscapeForTerminalEscapesControlAndInvalidBytes) {
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9 \xe4\xb8\xad kept"), "caf\xc3\xa9 \xe4\xb8\xad kept");
  EXPECT_EQ(EscapeForTerminal(std::string("\x1b[31mred\0\x7f\xff", 11)),
            "\\x1b[31mred\\x00\\x7f\\xff");
  // A line redrawn over the one a person approves, a right-to-left override, a C1 CSI.
  EXPECT_EQ(EscapeForTerminal("ls\r\x1b[2Krm -rf ~"), "ls\\r\\x1b[2Krm -rf ~");
  EXPECT_EQ(EscapeForTerminal("a\xe2\x80\xae"
                              "b\xc2\x9b"),
            "a\\u202eb\\u009b");
  EXPECT_EQ(EscapeForTerminal("one\ntwo\tx"), "one\\ntwo\\tx");
  EXPECT_EQ(EscapeForTerminal("one\ntwo\tx", /*keep_newlines=*/true), "one\ntwo\tx");
  // An overlong encoding of '/' and a lone surrogate are not UTF-8.
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf\xed\xa0\x80"), "\\xc0\\xaf\\xed\\xa0\\x80");
  std::string once = EscapeForTerminal("\x1b\xe2\x80\xae\n");
  EXPECT_EQ(EscapeForTerminal(once), once) << "applying it twice changes nothing more";
}

}  // namespace
}  // namespace agentd
