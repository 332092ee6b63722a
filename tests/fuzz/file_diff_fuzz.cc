// A workspace file's change as a unified diff (agents/tools/file_diff.h), on any bytes:
// the diff is valid UTF-8 (it goes into a transcript proto), empty exactly when nothing
// changed, and bounded by what it shows.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agents/tools/file_diff.h"
#include "common/text.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte says where "before" ends and "after" begins, and whether it existed.
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = rest.size() * (data[0] & 0x7f) / 127;
  const bool existed = (data[0] & 0x80) != 0;
  const std::string before = existed ? rest.substr(0, split) : "";
  const std::string after = rest.substr(split);
  std::string diff = agentd::tools::FileDiff("dir/f\xff.txt", before, after, existed);
  FUZZ_CHECK(agentd::IsValidUtf8(diff));
  FUZZ_CHECK(diff.empty() == (existed && before == after));
  // Every line of both files at most once, with its marker, plus the headers and hunks.
  FUZZ_CHECK(diff.size() <= 3 * (before.size() + after.size()) + 64 * (rest.size() + 4) + 256);
  return 0;
}
