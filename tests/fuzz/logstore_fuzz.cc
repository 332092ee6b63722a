// The log segment reader (manager/core/logstore.h) on any segment files: the input is cut
// into two segments of one agent's log (as a crash, a full disk or a hostile same-uid
// process could leave them), which LogStore recovers, reads from the start, tails and
// appends to. Records or an error, never a crash or a read out of bounds.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "manager/core/logstore.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string& Dir() {
  static const std::string* dir = [] {
    spdlog::set_level(spdlog::level::off);  // a warning per bad segment is noise here
    // In memory when the machine has /dev/shm: each run writes and reads a few files.
    std::string tmpl = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    tmpl += "/agentd-logstore-fuzz-XXXXXX";
    return new std::string(mkdtemp(tmpl.data()));
  }();
  return *dir;
}

void Write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(data.data(), data.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string& dir = Dir();
  std::filesystem::remove_all(dir + "/a");
  std::filesystem::create_directories(dir + "/a");
  size_t split = (data[0] | (data[1] << 8)) % (size - 1);
  std::string bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  split = std::min(split, bytes.size());
  Write(dir + "/a/00000000000000000001.seg", bytes.substr(0, split));
  if (split < bytes.size()) {
    // The second segment's first seq is whatever its header says it is; name it 1000.
    Write(dir + "/a/00000000000000001000.seg", bytes.substr(split));
  }
  agentd::LogStoreOptions options;
  options.dir = dir;
  options.segment_bytes = 4096;
  options.keep_segments = 3;
  options.ring_bytes = 2048;
  options.max_line_bytes = 512;
  absl::StatusOr<std::unique_ptr<agentd::LogStore>> store = agentd::LogStore::Open(options);
  FUZZ_CHECK(store.ok());
  int64_t cursor = 0;
  for (int i = 0; i < 64; ++i) {
    agentd::v1::StreamLogsResponse out;
    absl::StatusOr<int64_t> next = (*store)->Read("a", cursor, 1024, ~0u, &out);
    if (!next.ok() || *next == cursor) break;
    FUZZ_CHECK(*next > cursor);
    cursor = *next;
  }
  (void)(*store)->LastLines("a", 5, 0);
  (void)(*store)->Segments("a");
  (*store)->AppendSystem("a", "fuzz");
  int64_t last = (*store)->LastSeq("a");
  agentd::v1::StreamLogsResponse out;
  absl::StatusOr<int64_t> tail = (*store)->Read("a", last > 0 ? last - 1 : 0, 1024, ~0u, &out);
  (void)tail;
  return 0;
}
