#include "common/sha256.h"

#include <string>

#include "common/token.h"
#include "gtest/gtest.h"

namespace agentd {
namespace {

// FIPS 180-2's examples and RFC 4231's test cases 2 and 6 (a key longer than a block).
TEST(Sha256Test, DigestsMatchThePublishedVectors) {
  EXPECT_EQ(DigestHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(DigestHex(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(DigestHex(Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(DigestHex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(DigestHex(HmacSha256(std::string(131, '\xaa'),
                                 "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Sha256Test, BytesAndHexAreTheSameDigest) {
  Sha256Digest d = Sha256(std::string("a\0b", 3));  // embedded NUL counts
  std::string bytes = DigestBytes(d);
  ASSERT_EQ(bytes.size(), 32u);
  EXPECT_NE(d, Sha256("a"));
  std::string hex = DigestHex(d);
  ASSERT_EQ(hex.size(), 64u);
  for (size_t i = 0; i < bytes.size(); ++i) {
    EXPECT_EQ(std::stoi(hex.substr(2 * i, 2), nullptr, 16), static_cast<unsigned char>(bytes[i]));
  }
}

TEST(Sha256Test, FillRandomFillsDistinctBuffers) {
  unsigned char a[64] = {}, b[64] = {};
  ASSERT_TRUE(FillRandom(a, sizeof(a)));
  ASSERT_TRUE(FillRandom(b, sizeof(b)));
  EXPECT_NE(std::string(reinterpret_cast<char*>(a), sizeof(a)),
            std::string(reinterpret_cast<char*>(b), sizeof(b)));
  EXPECT_TRUE(FillRandom(a, 0));
}

}  // namespace
}  // namespace agentd
