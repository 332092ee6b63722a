#include "manager/core/logstore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/paths.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

static_assert(std::endian::native == std::endian::little, "segment files are little-endian");

constexpr char kFileMagic[8] = {'A', 'G', 'D', 'L', 'O', 'G', '1', '\n'};
constexpr int64_t kFileHeader = 24;
constexpr size_t kRecHeader = 24;
constexpr uint16_t kRecMagic = 0xA6D0;
constexpr uint8_t kGapStream = 0x10;  // a WRITE_ERROR gap: payload is to_seq, bytes lost
constexpr uint8_t kFlagTruncated = 1;
constexpr int64_t kRingBlockMax = 64 << 10;  // ring blocks: an eighth of the ring, 4-64 KiB
constexpr int64_t kRingBlockMin = 4 << 10;
constexpr int64_t kIndexEvery = 256 << 10;  // a sparse seq → offset index entry this often
constexpr size_t kFlushAt = 1 << 20;        // write pending records once this many bytes wait
constexpr size_t kReadChunk = 256 << 10;    // one read(2) of a pipe, one pread of a segment
constexpr size_t kPipeBudget = 1 << 20;     // per pipe per epoll round, for fairness

struct RecHeader {
  uint32_t len = 0;
  uint8_t stream = 0;
  uint8_t flags = 0;
  int64_t seq = 0;
  int64_t time_us = 0;
};

void EncodeHeader(const RecHeader& h, char* p) {
  std::memcpy(p, &h.len, 4);
  p[4] = static_cast<char>(h.stream);
  p[5] = static_cast<char>(h.flags);
  std::memcpy(p + 6, &kRecMagic, 2);
  std::memcpy(p + 8, &h.seq, 8);
  std::memcpy(p + 16, &h.time_us, 8);
}

bool DecodeHeader(const char* p, RecHeader* h) {
  uint16_t magic;
  std::memcpy(&magic, p + 6, 2);
  if (magic != kRecMagic) return false;
  std::memcpy(&h->len, p, 4);
  h->stream = static_cast<uint8_t>(p[4]);
  h->flags = static_cast<uint8_t>(p[5]);
  std::memcpy(&h->seq, p + 8, 8);
  std::memcpy(&h->time_us, p + 16, 8);
  return true;
}

void SetTime(int64_t us, google::protobuf::Timestamp* ts) {
  ts->set_seconds(us / 1000000);
  ts->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
}

std::string SegmentName(int64_t first_seq) { return absl::StrFormat("%020d.seg", first_seq); }

// write(2) all of it, or an errno.
int WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

}  // namespace

LogStore::LogStore(LogStoreOptions options) : options_(std::move(options)) {}

OutputPipes::~OutputPipes() {
  if (out_ >= 0) close(out_);
  if (err_ >= 0) close(err_);
}

struct LogStore::Pipe {
  int fd = -1;
  v1::LogStream stream = v1::LOG_STREAM_STDOUT;
  std::shared_ptr<AgentLog> log;
  std::string partial;  // the start of a line whose newline has not come yet
};

struct LogStore::AgentLog {
  struct Segment {
    int64_t first_seq = 0;
    int64_t bytes_before = 0;  // record bytes of this agent's log before this segment
    int64_t size = 0;          // bytes in the file (header included) that hold whole records
    std::string path;
    std::vector<std::pair<int64_t, int64_t>> index;  // (seq, offset), ascending
    bool indexed = false;                            // index covers the whole file
  };
  struct Block {
    int64_t first_seq = 0;
    std::string data;  // encoded records, as on disk
  };
  struct Deleted {
    int64_t first_seq, last_seq, bytes;
  };
  struct Waiter {
    int64_t after_seq;
    std::function<void()> fn;
  };

  absl::Mutex mu;
  std::string id, dir;
  std::vector<Segment> segments ABSL_GUARDED_BY(mu);  // oldest first; back() is written to
  int fd ABSL_GUARDED_BY(mu) = -1;                    // segments.back(), open for appending
  bool rotate ABSL_GUARDED_BY(mu) = false;            // start a new segment on next write
  bool create_failed ABSL_GUARDED_BY(mu) = false;     // said once, not per record
  int64_t next_seq ABSL_GUARDED_BY(mu) = 1;
  std::string pending ABSL_GUARDED_BY(mu);  // encoded records not yet written
  int64_t pending_first_seq ABSL_GUARDED_BY(mu) = 0;
  int64_t next_index_at ABSL_GUARDED_BY(mu) = kIndexEvery;
  std::deque<Block> ring ABSL_GUARDED_BY(mu);
  int64_t ring_size ABSL_GUARDED_BY(mu) = 0;
  std::vector<Deleted> deleted ABSL_GUARDED_BY(mu);
  // Records that could not be written, to be marked on disk by a gap record.
  int64_t gap_from ABSL_GUARDED_BY(mu) = 0, gap_to ABSL_GUARDED_BY(mu) = 0,
                   gap_bytes ABSL_GUARDED_BY(mu) = 0;
  std::vector<Pipe*> pipes ABSL_GUARDED_BY(mu);
  std::map<uint64_t, Waiter> waiters ABSL_GUARDED_BY(mu);
  uint64_t next_waiter ABSL_GUARDED_BY(mu) = 1;

  ~AgentLog() {
    if (fd >= 0) close(fd);
  }
};

// The parts of LogStore that work on one agent's log; every function runs with its
// mutex held.
class LogWriter {
 public:
  using Log = LogStore::AgentLog;
  LogWriter(const LogStoreOptions& o, std::atomic<int64_t>* written, std::atomic<int64_t>* dropped)
      : o_(o), written_(written), dropped_(dropped) {}

  // Appends a line as records of at most max_line_bytes, each but the last marked as
  // continued (the last too when `continues`: more of the line comes later).
  void AppendLine(Log& log, v1::LogStream stream, int64_t time_us, const char* p, size_t n,
                  bool continues) {
    while (n > static_cast<size_t>(o_.max_line_bytes)) {
      Append(log, stream, kFlagTruncated, time_us, p, static_cast<size_t>(o_.max_line_bytes));
      p += o_.max_line_bytes;
      n -= static_cast<size_t>(o_.max_line_bytes);
    }
    Append(log, stream, continues ? kFlagTruncated : 0, time_us, p, n);
  }

  // Moves the callbacks of readers waiting for records that now exist into `wake`.
  void Wake(Log& log, std::vector<std::function<void()>>* wake) {
    for (auto it = log.waiters.begin(); it != log.waiters.end();) {
      if (it->second.after_seq < log.next_seq - 1) {
        wake->push_back(std::move(it->second.fn));
        it = log.waiters.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Writes pending records to the active segment; on failure they become a gap on disk.
  void Flush(Log& log) {
    if (log.pending.empty()) return;
    if (!EnsureActive(log)) {
      DropPending(log);
      return;
    }
    Log::Segment& seg = log.segments.back();
    int err = 0;
    if (log.gap_to != 0) {
      char gap[kRecHeader + 16];
      RecHeader h;
      h.len = 16;
      h.stream = kGapStream;
      h.seq = log.gap_from;
      h.time_us = absl::ToUnixMicros(absl::Now());
      EncodeHeader(h, gap);
      std::memcpy(gap + kRecHeader, &log.gap_to, 8);
      std::memcpy(gap + kRecHeader + 8, &log.gap_bytes, 8);
      err = WriteAll(log.fd, gap, sizeof(gap));
      if (err == 0) {
        seg.size += static_cast<int64_t>(sizeof(gap));
        // The pending records' index entries were computed without it.
        for (auto& [seq, off] : seg.index) {
          if (seq >= log.pending_first_seq) off += static_cast<int64_t>(sizeof(gap));
        }
        log.gap_from = log.gap_to = log.gap_bytes = 0;
      }
    }
    if (err == 0) err = WriteAll(log.fd, log.pending.data(), log.pending.size());
    if (err != 0) {
      spdlog::error("agent {} log: writing {}: {}", log.id, seg.path, std::strerror(err));
      // Cut a partly written record off, so the file stays whole records.
      if (ftruncate(log.fd, seg.size) != 0) {
        // The torn bytes stay: nothing more may follow them in this segment.
        close(log.fd);
        log.fd = -1;
        log.rotate = true;
      }
      DropPending(log);
      return;
    }
    seg.size += static_cast<int64_t>(log.pending.size());
    log.pending.clear();
  }

 private:
  void Append(Log& log, v1::LogStream stream, uint8_t flags, int64_t time_us, const char* p,
              size_t n) {
    int64_t rec = static_cast<int64_t>(kRecHeader + n);
    if (log.fd >= 0) {
      const Log::Segment& seg = log.segments.back();
      int64_t end = seg.size + static_cast<int64_t>(log.pending.size());
      if (end > kFileHeader && end + rec > o_.segment_bytes) {
        Flush(log);
        close(log.fd);
        log.fd = -1;
        log.rotate = true;
      }
    }
    if (log.fd < 0 && log.pending.empty()) (void)EnsureActive(log);
    RecHeader h;
    h.len = static_cast<uint32_t>(n);
    h.stream = static_cast<uint8_t>(stream);
    h.flags = flags;
    h.seq = log.next_seq++;
    h.time_us = time_us;
    char hdr[kRecHeader];
    EncodeHeader(h, hdr);
    if (log.pending.empty()) log.pending_first_seq = h.seq;
    if (log.fd >= 0) {
      Log::Segment& seg = log.segments.back();
      int64_t off = seg.size + static_cast<int64_t>(log.pending.size());
      if (off >= log.next_index_at) {
        seg.index.emplace_back(h.seq, off);
        log.next_index_at = off + kIndexEvery;
      }
    }
    log.pending.append(hdr, kRecHeader).append(p, n);
    // Into the ring, whose oldest blocks go once they are on disk and over the bound.
    const size_t block =
        static_cast<size_t>(std::clamp(o_.ring_bytes / 8, kRingBlockMin, kRingBlockMax));
    if (log.ring.empty() || log.ring.back().data.size() >= block) {
      log.ring.emplace_back();
      log.ring.back().first_seq = h.seq;
      // Not reserved up front: most agents write little, and a thousand idle agents must
      // not cost a thousand blocks.
    }
    log.ring.back().data.append(hdr, kRecHeader).append(p, n);
    log.ring_size += rec;
    while (log.ring_size > o_.ring_bytes && log.ring.size() > 1) {
      if (!log.pending.empty() && log.ring[1].first_seq > log.pending_first_seq) Flush(log);
      log.ring_size -= static_cast<int64_t>(log.ring.front().data.size());
      log.ring.pop_front();
    }
    written_->fetch_add(rec, std::memory_order_relaxed);
    if (log.pending.size() >= kFlushAt) Flush(log);
  }

  // Opens the segment to append to, starting a new one when the last is full.
  bool EnsureActive(Log& log) {
    if (log.fd >= 0) return true;
    bool fresh = log.segments.empty() || log.rotate;
    if (!fresh) {
      Log::Segment& seg = log.segments.back();
      log.fd = open(seg.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (log.fd >= 0) {
        log.next_index_at = seg.index.empty() ? kIndexEvery : seg.index.back().second + kIndexEvery;
        return true;
      }
      fresh = true;
    }
    if (absl::Status s = MakeDirs(log.dir, 0700); !s.ok()) return CreateFailed(log, s.message());
    Log::Segment seg;
    seg.first_seq = log.pending.empty() ? log.next_seq : log.pending_first_seq;
    // Records lost to a write error are marked at the start of this segment: it begins
    // with them, so that a reader coming from the previous one meets the gap record.
    if (log.gap_to != 0) seg.first_seq = std::min(seg.first_seq, log.gap_from);
    seg.bytes_before = 0;
    if (!log.segments.empty()) {
      const Log::Segment& last = log.segments.back();
      seg.bytes_before = last.bytes_before + last.size - kFileHeader;
    }
    seg.path = absl::StrCat(log.dir, "/", SegmentName(seg.first_seq));
    seg.size = kFileHeader;
    seg.indexed = true;
    int fd = open(seg.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return CreateFailed(log, absl::StrCat(seg.path, ": ", std::strerror(errno)));
    char header[kFileHeader];
    std::memcpy(header, kFileMagic, 8);
    std::memcpy(header + 8, &seg.first_seq, 8);
    std::memcpy(header + 16, &seg.bytes_before, 8);
    if (int err = WriteAll(fd, header, sizeof(header)); err != 0) {
      close(fd);
      unlink(seg.path.c_str());
      return CreateFailed(log, absl::StrCat(seg.path, ": ", std::strerror(err)));
    }
    log.fd = fd;
    log.rotate = false;
    log.create_failed = false;
    log.next_index_at = kIndexEvery;
    log.segments.push_back(std::move(seg));
    // Retention: the oldest segments go, and are remembered as a gap with their size.
    while (static_cast<int64_t>(log.segments.size()) > o_.keep_segments) {
      const Log::Segment& old = log.segments.front();
      if (unlink(old.path.c_str()) != 0 && errno != ENOENT) {
        spdlog::warn("agent {} log: removing {}: {}", log.id, old.path, std::strerror(errno));
      }
      log.deleted.push_back({old.first_seq, log.segments[1].first_seq - 1, old.size - kFileHeader});
      log.segments.erase(log.segments.begin());
    }
    return true;
  }

  bool CreateFailed(Log& log, absl::string_view why) {
    if (!log.create_failed) spdlog::error("agent {} log: cannot create a segment: {}", log.id, why);
    log.create_failed = true;
    log.rotate = true;
    return false;
  }

  void DropPending(Log& log) {
    if (log.gap_to == 0) log.gap_from = log.pending_first_seq;
    log.gap_to = log.next_seq - 1;
    log.gap_bytes += static_cast<int64_t>(log.pending.size());
    dropped_->fetch_add(static_cast<int64_t>(log.pending.size()), std::memory_order_relaxed);
    if (!log.segments.empty()) {
      auto& index = log.segments.back().index;
      while (!index.empty() && index.back().first >= log.pending_first_seq) index.pop_back();
    }
    log.pending.clear();
  }

  const LogStoreOptions& o_;
  std::atomic<int64_t>* written_;
  std::atomic<int64_t>* dropped_;
};

namespace {

// Decodes records from `data` into `out` (seq > *cursor, in `mask`), up to `max_bytes`;
// stops at a gap record when records were already emitted. Returns bytes consumed.
// `*gap` is set when the next item is a gap (and nothing else was emitted).
size_t DecodeRecords(const char* data, size_t n, int64_t* cursor, size_t max_bytes, uint32_t mask,
                     v1::StreamLogsResponse* out, size_t* used, bool* stop) {
  size_t pos = 0;
  while (pos + kRecHeader <= n && *used < max_bytes) {
    RecHeader h;
    if (!DecodeHeader(data + pos, &h)) {
      *stop = true;  // not a record: the rest of this file is unreadable
      break;
    }
    if (pos + kRecHeader + h.len > n) break;  // the rest is in the next chunk
    const char* payload = data + pos + kRecHeader;
    if (h.stream == kGapStream) {
      int64_t to = 0, bytes = 0;
      if (h.len >= 16) {
        std::memcpy(&to, payload, 8);
        std::memcpy(&bytes, payload + 8, 8);
      }
      if (to > *cursor) {
        if (out->records_size() > 0) {
          *stop = true;
          break;
        }
        v1::LogGap* g = out->mutable_gap();
        g->set_from_seq(std::max(h.seq, *cursor + 1));
        g->set_to_seq(to);
        g->set_bytes_lost(bytes);
        g->set_reason(v1::LOG_GAP_REASON_WRITE_ERROR);
        *cursor = to;
        *stop = true;
        return pos + kRecHeader + h.len;
      }
    } else if (h.seq > *cursor) {
      // A stream byte from disk may be anything (a torn or foreign file): only 0–31 are bits.
      if (h.stream < 32 && (mask & (1u << h.stream)) != 0) {
        v1::LogRecord* r = out->add_records();
        r->set_seq(h.seq);
        SetTime(h.time_us, r->mutable_time());
        r->set_stream(static_cast<v1::LogStream>(h.stream));
        r->set_line(payload, h.len);
        r->set_truncated((h.flags & kFlagTruncated) != 0);
        *used += h.len + 16;
      }
      *cursor = h.seq;
    }
    pos += kRecHeader + h.len;
  }
  return pos;
}

// Builds the sparse seq → offset index of a segment from an earlier run, on its first
// read: one pass over its record headers.
template <typename Segment>
void IndexSegment(Segment& seg) {
  int fd = open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string buf(kReadChunk, '\0');
  int64_t off = kFileHeader, next_index = kIndexEvery, buf_off = -1;
  ssize_t have = 0;
  while (fd >= 0 && off + static_cast<int64_t>(kRecHeader) <= seg.size) {
    if (buf_off < 0 || off < buf_off || off + static_cast<int64_t>(kRecHeader) > buf_off + have) {
      buf_off = off;
      have = pread(fd, buf.data(), buf.size(), off);
      if (have < static_cast<ssize_t>(kRecHeader)) break;
    }
    RecHeader h;
    if (!DecodeHeader(buf.data() + (off - buf_off), &h)) break;
    if (off >= next_index) {
      seg.index.emplace_back(h.seq, off);
      next_index = off + kIndexEvery;
    }
    off += static_cast<int64_t>(kRecHeader + h.len);
  }
  if (fd >= 0) close(fd);
  seg.indexed = true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(LogStoreOptions options) {
  if (absl::Status s = MakeDirs(options.dir, 0700); !s.ok()) return s;
  std::unique_ptr<LogStore> store(new LogStore(std::move(options)));
  store->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  store->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (store->epoll_fd_ < 0 || store->wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("log store: epoll/eventfd: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = store->wake_fd_;
  epoll_ctl(store->epoll_fd_, EPOLL_CTL_ADD, store->wake_fd_, &ev);
  store->thread_ = std::thread([s = store.get()] { s->Run(); });
  return store;
}

LogStore::~LogStore() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  // What the pipes still hold goes to disk before the files close.
  absl::MutexLock l(&mu_);
  LogWriter w(options_, &bytes_written_, &dropped_bytes_);
  for (auto& [fd, pipe] : pipes_) {
    std::vector<std::function<void()>> wake;
    AgentLog& log = *pipe->log;
    absl::MutexLock ll(&log.mu);
    ReadPipe(log, *pipe, SIZE_MAX, &wake);
    close(fd);
  }
  for (auto& [id, log] : agents_) {
    absl::MutexLock ll(&log->mu);
    w.Flush(*log);
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::StatusOr<std::shared_ptr<LogStore::AgentLog>> LogStore::Get(const std::string& agent) {
  {
    absl::MutexLock l(&mu_);
    auto it = agents_.find(agent);
    if (it != agents_.end()) return it->second;
  }
  // Recovered without mu_ (the drain thread needs it for every pipe); two threads that
  // open the same log at once do the same work, and the first one in is kept.
  std::shared_ptr<AgentLog> log = Recover(agent);
  absl::MutexLock l(&mu_);
  return agents_.emplace(agent, std::move(log)).first->second;
}

std::shared_ptr<LogStore::AgentLog> LogStore::Recover(const std::string& agent) {
  auto log = std::make_shared<AgentLog>();
  log->id = agent;
  log->dir = absl::StrCat(options_.dir, "/", agent);
  absl::MutexLock ll(&log->mu);
  // Recover: the segments on disk, the last one scanned for its end (a torn record from a
  // crash is cut off) and indexed.
  if (DIR* d = opendir(log->dir.c_str())) {
    std::vector<int64_t> firsts;
    while (dirent* e = readdir(d)) {
      absl::string_view name = e->d_name;
      int64_t first = 0;
      if (name.size() == 24 && absl::EndsWith(name, ".seg") &&
          absl::SimpleAtoi(name.substr(0, 20), &first)) {
        firsts.push_back(first);
      }
    }
    closedir(d);
    std::sort(firsts.begin(), firsts.end());
    for (int64_t first : firsts) {
      AgentLog::Segment seg;
      seg.first_seq = first;
      seg.path = absl::StrCat(log->dir, "/", SegmentName(first));
      int fd = open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
      char header[kFileHeader];
      struct stat st {};
      if (fd < 0 || pread(fd, header, sizeof(header), 0) != kFileHeader ||
          std::memcmp(header, kFileMagic, 8) != 0 || fstat(fd, &st) != 0) {
        spdlog::warn("agent {} log: {} is not a log segment; ignored", agent, seg.path);
        if (fd >= 0) close(fd);
        continue;
      }
      std::memcpy(&seg.bytes_before, header + 16, 8);
      seg.size = st.st_size;
      close(fd);
      log->segments.push_back(std::move(seg));
    }
  }
  if (!log->segments.empty()) {
    AgentLog::Segment& last = log->segments.back();
    int fd = open(last.path.c_str(), O_RDWR | O_CLOEXEC);
    int64_t off = kFileHeader, last_seq = last.first_seq - 1, next_index = kIndexEvery;
    if (fd >= 0) {
      std::string buf(kReadChunk + kRecHeader + static_cast<size_t>(options_.max_line_bytes), 0);
      for (;;) {
        ssize_t n = pread(fd, buf.data(), buf.size(), off);
        size_t pos = 0;
        while (n > 0 && pos + kRecHeader <= static_cast<size_t>(n)) {
          RecHeader h;
          if (!DecodeHeader(buf.data() + pos, &h) ||
              pos + kRecHeader + h.len > static_cast<size_t>(n)) {
            break;
          }
          if (off + static_cast<int64_t>(pos) >= next_index) {
            last.index.emplace_back(h.seq, off + static_cast<int64_t>(pos));
            next_index = off + static_cast<int64_t>(pos) + kIndexEvery;
          }
          last_seq = h.seq;
          if (h.stream == kGapStream && h.len >= 16) {
            std::memcpy(&last_seq, buf.data() + pos + kRecHeader, 8);
          }
          pos += kRecHeader + h.len;
        }
        off += static_cast<int64_t>(pos);
        if (pos == 0) break;
      }
      if (off < last.size) {
        spdlog::warn("agent {} log: {}: cutting {} bytes of a torn record at the end", agent,
                     last.path, last.size - off);
        if (ftruncate(fd, off) != 0) log->rotate = true;
      }
      close(fd);
    }
    last.size = off;
    last.indexed = true;
    log->next_seq = last_seq + 1;
    log->next_index_at = next_index;
    if (log->segments.front().first_seq > 1) {
      const AgentLog::Segment& first = log->segments.front();
      log->deleted.push_back({1, first.first_seq - 1, first.bytes_before});
    }
  }
  return log;
}

absl::StatusOr<OutputPipes> LogStore::Capture(const std::string& agent) {
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return log.status();
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe for agent ", agent, ": ", std::strerror(errno)));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    return absl::InternalError(absl::StrCat("pipe for agent ", agent, ": ", std::strerror(e)));
  }
  absl::MutexLock l(&mu_);
  absl::MutexLock ll(&(*log)->mu);
  for (auto [fd, stream] :
       {std::pair{out[0], v1::LOG_STREAM_STDOUT}, std::pair{err[0], v1::LOG_STREAM_STDERR}}) {
    fcntl(fd, F_SETFL, O_NONBLOCK);
    // A larger pipe means fewer wake-ups for a chatty agent (best effort: 1 MiB is the
    // default pipe-max-size).
    fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    auto pipe = std::make_unique<Pipe>();
    pipe->fd = fd;
    pipe->stream = stream;
    pipe->log = *log;
    (*log)->pipes.push_back(pipe.get());
    pipes_[fd] = std::move(pipe);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return OutputPipes(out[1], err[1]);
}

bool LogStore::ReadPipe(AgentLog& log, Pipe& pipe, size_t budget,
                        std::vector<std::function<void()>>* wake) {
  thread_local std::unique_ptr<char[]> buf(new char[kReadChunk]);
  LogWriter w(options_, &bytes_written_, &dropped_bytes_);
  const size_t max_line = static_cast<size_t>(options_.max_line_bytes);
  size_t total = 0;
  bool open = true;
  while (total < budget) {
    ssize_t n = read(pipe.fd, buf.get(), kReadChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    int64_t now = absl::ToUnixMicros(absl::Now());
    if (n <= 0) {  // EOF (or an error, which ends the pipe alike)
      if (!pipe.partial.empty()) {
        w.AppendLine(log, pipe.stream, now, pipe.partial.data(), pipe.partial.size(), false);
        pipe.partial.clear();
      }
      open = false;
      break;
    }
    total += static_cast<size_t>(n);
    const char* p = buf.get();
    const char* end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (nl == nullptr) {
        // An unfinished line waits for the rest; one that is already too long goes now.
        pipe.partial.append(p, static_cast<size_t>(end - p));
        if (pipe.partial.size() > max_line) {
          size_t whole = pipe.partial.size() / max_line * max_line;
          if (whole == pipe.partial.size()) whole -= max_line;  // the last piece may end it
          w.AppendLine(log, pipe.stream, now, pipe.partial.data(), whole, true);
          pipe.partial.erase(0, whole);
        }
        break;
      }
      if (!pipe.partial.empty()) {
        pipe.partial.append(p, static_cast<size_t>(nl - p));
        w.AppendLine(log, pipe.stream, now, pipe.partial.data(), pipe.partial.size(), false);
        pipe.partial.clear();
      } else {
        w.AppendLine(log, pipe.stream, now, p, static_cast<size_t>(nl - p), false);
      }
      p = nl + 1;
    }
  }
  w.Flush(log);
  w.Wake(log, wake);
  return open;
}

void LogStore::Run() {
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("log store: epoll_wait: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) return;
      Pipe* pipe;
      {
        absl::MutexLock l(&mu_);
        auto it = pipes_.find(fd);
        if (it == pipes_.end()) continue;
        pipe = it->second.get();  // stays valid: only this thread removes pipes
      }
      std::vector<std::function<void()>> wake;
      bool open;
      {
        AgentLog& log = *pipe->log;
        absl::MutexLock ll(&log.mu);
        open = ReadPipe(log, *pipe, kPipeBudget, &wake);
        if (!open) log.pipes.erase(std::find(log.pipes.begin(), log.pipes.end(), pipe));
      }
      for (auto& fn : wake) fn();
      if (!open) {
        // Forgotten before the descriptor is closed, all under mu_: once closed, its number
        // may come back at once from a pipe2() in Capture, whose new entry must not be the
        // one erased.
        absl::MutexLock l(&mu_);
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        pipes_.erase(fd);
        close(fd);
      }
    }
  }
}

void LogStore::Append(const std::string& agent, v1::LogStream stream, absl::string_view text) {
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return;
  std::vector<std::function<void()>> wake;
  {
    absl::MutexLock l(&(*log)->mu);
    LogWriter w(options_, &bytes_written_, &dropped_bytes_);
    w.AppendLine(**log, stream, absl::ToUnixMicros(absl::Now()), text.data(), text.size(), false);
    w.Flush(**log);
    w.Wake(**log, &wake);
  }
  for (auto& fn : wake) fn();
}

void LogStore::Drain(const std::string& agent) {
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return;
  std::vector<std::function<void()>> wake;
  {
    absl::MutexLock l(&(*log)->mu);
    // EOF is left for the drain thread to see and close.
    for (Pipe* p : (*log)->pipes) ReadPipe(**log, *p, SIZE_MAX, &wake);
  }
  for (auto& fn : wake) fn();
}

std::vector<std::string> LogStore::LastLines(const std::string& agent, int n, int64_t after_seq) {
  std::vector<std::string> out;
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok() || n <= 0) return out;
  absl::MutexLock l(&(*log)->mu);
  // Newest blocks first, each decoded whole, until n lines are found.
  std::deque<std::string> lines;
  for (auto b = (*log)->ring.rbegin(); b != (*log)->ring.rend() && lines.size() < size_t(n); ++b) {
    std::vector<std::string> block;
    for (size_t pos = 0; pos + kRecHeader <= b->data.size();) {
      RecHeader h;
      DecodeHeader(b->data.data() + pos, &h);
      if (h.seq > after_seq &&
          (h.stream == v1::LOG_STREAM_STDOUT || h.stream == v1::LOG_STREAM_STDERR)) {
        block.emplace_back(b->data.data() + pos + kRecHeader, h.len);
      }
      pos += kRecHeader + h.len;
    }
    for (auto it = block.rbegin(); it != block.rend() && lines.size() < size_t(n); ++it) {
      lines.push_front(std::move(*it));
    }
  }
  out.assign(lines.begin(), lines.end());
  return out;
}

int64_t LogStore::LastSeq(const std::string& agent) {
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return 0;
  absl::MutexLock l(&(*log)->mu);
  return (*log)->next_seq - 1;
}

uint64_t LogStore::NotifyAfter(const std::string& agent, int64_t after_seq,
                               std::function<void()> fn) {
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return 0;
  absl::MutexLock l(&(*log)->mu);
  if ((*log)->next_seq - 1 > after_seq) return 0;
  uint64_t id = (*log)->next_waiter++;
  (*log)->waiters[id] = {after_seq, std::move(fn)};
  return id;
}

void LogStore::CancelNotify(const std::string& agent, uint64_t id) {
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return;
  absl::MutexLock l(&(*log)->mu);
  (*log)->waiters.erase(id);
}

char* LogStore::ReadBuffer::Get(size_t n) {
  if (disk_size_ < n) {
    disk_.reset(new char[n]);  // not zeroed: pread fills what is read
    disk_size_ = n;
  }
  return disk_.get();
}

void LogStore::ReadBuffer::Release() {
  disk_.reset();
  disk_size_ = 0;
  std::string().swap(ring_);
}

absl::StatusOr<int64_t> LogStore::Read(const std::string& agent, int64_t after_seq,
                                       size_t max_bytes, uint32_t stream_mask,
                                       v1::StreamLogsResponse* out, ReadBuffer* scratch) {
  absl::StatusOr<std::shared_ptr<AgentLog>> found = Get(agent);
  if (!found.ok()) return found.status();
  AgentLog& log = **found;
  int64_t cursor = std::max<int64_t>(after_seq, 0);
  size_t used = 0;
  bool stop = false;
  ReadBuffer own;
  if (scratch == nullptr) scratch = &own;
  std::string& raw = scratch->ring();
  raw.clear();
  // Step by step: each decides under the lock where the next records are and takes what
  // it needs (a copy of ring blocks, or a segment's descriptor and extent); the decoding
  // and the disk reads happen without the lock, so readers never hold up the drain thread.
  while (used < max_bytes && !stop) {
    int fd = -1;
    int64_t off = kFileHeader, end = 0, next_first = 0;
    std::string path;
    {
      absl::MutexLock l(&log.mu);
      if (cursor >= log.next_seq - 1) break;
      if (!log.ring.empty() && cursor + 1 >= log.ring.front().first_seq) {
        // The ring holds everything from its first record on.
        auto b = std::upper_bound(
            log.ring.begin(), log.ring.end(), cursor + 1,
            [](int64_t seq, const AgentLog::Block& blk) { return seq < blk.first_seq; });
        for (--b; b != log.ring.end() && raw.size() < max_bytes - used + kRecHeader; ++b) {
          raw += b->data;
        }
      } else {
        auto seg = std::upper_bound(
            log.segments.begin(), log.segments.end(), cursor + 1,
            [](int64_t seq, const AgentLog::Segment& sg) { return seq < sg.first_seq; });
        if (seg == log.segments.begin()) {
          // Deleted by retention (or never written): a gap up to the oldest record kept.
          if (out->records_size() > 0) break;
          int64_t to = log.segments.empty()
                           ? (log.ring.empty() ? log.next_seq - 1 : log.ring.front().first_seq - 1)
                           : log.segments.front().first_seq - 1;
          int64_t bytes = 0;
          for (const auto& d : log.deleted) {
            if (d.last_seq > cursor && d.first_seq <= to) bytes += d.bytes;
          }
          v1::LogGap* g = out->mutable_gap();
          g->set_from_seq(cursor + 1);
          g->set_to_seq(to);
          g->set_bytes_lost(bytes);
          g->set_reason(v1::LOG_GAP_REASON_RETENTION);
          return to;
        }
        --seg;
        if (!seg->indexed) IndexSegment(*seg);
        auto idx = std::upper_bound(
            seg->index.begin(), seg->index.end(), cursor + 1,
            [](int64_t seq, const std::pair<int64_t, int64_t>& e) { return seq < e.first; });
        if (idx != seg->index.begin()) off = std::prev(idx)->second;
        end = seg->size;
        next_first = std::next(seg) == log.segments.end() ? 0 : std::next(seg)->first_seq;
        path = seg->path;
        // Opened under the lock: retention may unlink it, the descriptor keeps it readable.
        fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          return absl::InternalError(
              absl::StrCat("agent ", agent, " log: ", path, ": ", std::strerror(errno)));
        }
      }
    }
    int64_t before = cursor;
    if (fd < 0) {
      DecodeRecords(raw.data(), raw.size(), &cursor, max_bytes, stream_mask, out, &used, &stop);
      raw.clear();
    } else {
      const size_t size = kReadChunk + kRecHeader + static_cast<size_t>(options_.max_line_bytes);
      char* buf = scratch->Get(size);
      while (off < end && used < max_bytes && !stop) {
        size_t want = static_cast<size_t>(std::min<int64_t>(size, end - off));
        ssize_t n = pread(fd, buf, want, off);
        if (n <= 0) break;
        size_t took = DecodeRecords(buf, static_cast<size_t>(n), &cursor, max_bytes, stream_mask,
                                    out, &used, &stop);
        if (took == 0) break;
        off += static_cast<int64_t>(took);
      }
      close(fd);
      // A sealed segment read to its end: the next one starts right after it.
      if (next_first != 0 && off >= end && !stop) cursor = std::max(cursor, next_first - 1);
    }
    if (cursor == before) break;  // nothing more to be had now (or an unreadable segment)
  }
  if (out->records_size() == 0 && !out->has_gap()) {
    // Records exist past the cursor that neither the disk nor the ring holds (written
    // nowhere after a write error, or behind a damaged record): a gap up to the next
    // record that can be read, so that a reader never waits for what will not come.
    absl::MutexLock l(&log.mu);
    int64_t last = log.next_seq - 1;
    if (cursor < last) {
      int64_t to = log.ring.empty() ? last : std::min(last, log.ring.front().first_seq - 1);
      if (to <= cursor) to = last;  // the ring holds it, yet it could not be read: skip all
      v1::LogGap* g = out->mutable_gap();
      g->set_from_seq(cursor + 1);
      g->set_to_seq(to);
      g->set_bytes_lost(log.gap_bytes);
      g->set_reason(v1::LOG_GAP_REASON_WRITE_ERROR);
      cursor = to;
    }
  }
  return cursor;
}

std::vector<v1::LogSegment> LogStore::Segments(const std::string& agent) {
  std::vector<v1::LogSegment> out;
  absl::StatusOr<std::shared_ptr<AgentLog>> log = Get(agent);
  if (!log.ok()) return out;
  absl::MutexLock l(&(*log)->mu);
  const auto& segs = (*log)->segments;
  for (size_t i = 0; i < segs.size(); ++i) {
    v1::LogSegment s;
    s.set_name(SegmentName(segs[i].first_seq));
    s.set_first_seq(segs[i].first_seq);
    s.set_last_seq(i + 1 < segs.size() ? segs[i + 1].first_seq - 1 : (*log)->next_seq - 1);
    s.set_size_bytes(segs[i].size);
    s.set_sealed(i + 1 < segs.size());
    out.push_back(std::move(s));
  }
  return out;
}

void LogStore::Remove(const std::string& agent) {
  {
    absl::MutexLock l(&mu_);
    agents_.erase(agent);
  }
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(options_.dir, "/", agent), ec);
  if (ec) spdlog::warn("logs of deleted agent {}: {}", agent, ec.message());
}

}  // namespace agentd
