// fs.read, fs.write, fs.edit, fs.list, fs.search: files of the workspace, through
// Workspace (openat2 beneath its root) so that nothing outside can be reached.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agents/tools/file_diff.h"
#include "agents/tools/tool.h"
#include "common/text.h"

namespace agentd::tools {
namespace {

using nlohmann::json;

constexpr size_t kMaxRead = 256 << 10;  // bytes of a file shown to the model
constexpr size_t kMaxWrite = 8 << 20;   // a file the model may write at once
constexpr size_t kMaxEntries = 1000;    // fs.list
constexpr size_t kMaxMatches = 200;     // fs.search
constexpr size_t kMaxSearchFile = 4 << 20;

ToolResult Error(const absl::Status& s) { return {std::string(s.message()), true}; }
ToolResult Error(const std::string& s) { return {s, true}; }

// Every read goes through Workspace::ReadFile (or ReadRegularFile for a file outside):
// regular files only, opened without blocking, at most `cap` bytes.
absl::StatusOr<std::string> ReadFile(const Workspace& ws, const std::string& path, size_t cap,
                                     bool* truncated) {
  absl::StatusOr<FileData> data = ws.ReadFile(path, cap);
  if (!data.ok()) return data.status();
  *truncated = data->truncated;
  return std::move(data->bytes);
}

// Writes `content` to `path` atomically: a temporary file beside it, then a rename.
absl::Status WriteFile(const Workspace& ws, const std::string& path, const std::string& content) {
  if (absl::Status s = ws.MakeDirs(ParentOf(path)); !s.ok()) return s;
  // The file keeps its mode (a script stays executable).
  mode_t mode = 0644;
  // O_PATH: a look at the old file's mode that cannot block on a FIFO or open a device.
  if (absl::StatusOr<int> old = ws.OpenAt(path, O_PATH); old.ok()) {
    struct stat st {};
    if (fstat(*old, &st) == 0) mode = st.st_mode & 07777;
    close(*old);
  }
  std::string tmp = absl::StrCat(path, ".agentd-tmp-", getpid());
  absl::StatusOr<int> fd = ws.OpenAt(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!fd.ok()) return fd.status();
  fchmod(*fd, mode);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t w = write(*fd, content.data() + off, content.size() - off);
    if (w < 0) {
      int err = errno;
      close(*fd);
      (void)ws.Remove(tmp);
      return absl::InternalError(absl::StrCat("writing \"", path, "\": ", std::strerror(err)));
    }
    off += static_cast<size_t>(w);
  }
  close(*fd);
  absl::Status renamed = ws.Rename(tmp, path);
  if (!renamed.ok()) (void)ws.Remove(tmp);
  return renamed;
}

// Reads a file outside the workspace once a person allowed it. The person is shown the
// path as the kernel resolves it (symlinks followed), and that is the file read.
absl::StatusOr<std::string> ReadOutside(const std::string& path, const ToolContext& ctx,
                                        bool* truncated) {
  std::string joined = !path.empty() && path[0] == '/' ? path : ctx.workspace->root() + "/" + path;
  char resolved[PATH_MAX];
  if (realpath(joined.c_str(), resolved) == nullptr) {
    return absl::NotFoundError(absl::StrCat("\"", path, "\": ", std::strerror(errno)));
  }
  absl::StatusOr<bool> ok = ctx.consent->Ask(
      {"fs.read",
       ConsentKind::kPathOutsideWorkspace,
       absl::StrCat("read ", resolved, " (outside the workspace ", ctx.workspace->root(), ")"),
       {{"path", resolved}},
       ctx.call_id + "/path"},
      ctx.cancel);
  if (!ok.ok()) return ok.status();
  if (!*ok) {
    return absl::PermissionDeniedError(
        absl::StrCat("\"", path, "\" is outside the workspace and a person denied reading it"));
  }
  int fd = open(resolved, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return absl::NotFoundError(absl::StrCat("\"", resolved, "\": ", std::strerror(errno)));
  absl::StatusOr<FileData> data = ReadRegularFile(fd, resolved, kMaxRead);
  close(fd);
  if (!data.ok()) return data.status();
  *truncated = data->truncated;
  return std::move(data->bytes);
}

bool LooksBinary(absl::string_view data) {
  return data.substr(0, 8192).find('\0') != absl::string_view::npos;
}

class ReadTool final : public Tool {
 public:
  std::string name() const override { return "fs.read"; }
  std::string description() const override {
    return "Read a text file of the workspace. Lines are numbered from 1; use offset and "
           "limit (lines) for a part of a large file.";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}, {"description", "Path relative to the workspace"}}},
              {"offset", {{"type", "integer"}, {"description", "First line, from 1"}}},
              {"limit", {{"type", "integer"}, {"description", "How many lines"}}}}},
            {"required", {"path"}}};
  }
  bool side_effect() const override { return false; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string path = args["path"];
    bool truncated = false;
    absl::StatusOr<std::string> data = ReadFile(*ctx.workspace, path, kMaxRead, &truncated);
    if (!data.ok() && data.status().code() == absl::StatusCode::kPermissionDenied &&
        ctx.consent != nullptr) {
      data = ReadOutside(path, ctx, &truncated);
    }
    if (!data.ok()) return Error(data.status());
    if (LooksBinary(*data)) return Error(absl::StrCat("\"", path, "\" is a binary file"));
    int64_t offset = args.value("offset", int64_t{1}), limit = args.value("limit", int64_t{0});
    if (offset <= 1 && limit <= 0) {
      return {truncated ? absl::StrCat(*data, "\n[… cut at ", kMaxRead,
                                       " bytes: read on with offset and limit]")
                        : *data};
    }
    std::vector<absl::string_view> lines = absl::StrSplit(*data, '\n');
    std::string out;
    for (int64_t i = std::max<int64_t>(offset, 1) - 1;
         i < static_cast<int64_t>(lines.size()) && (limit <= 0 || i < offset - 1 + limit); ++i) {
      absl::StrAppend(&out, lines[static_cast<size_t>(i)], "\n");
    }
    return {out};
  }
};

class WriteTool final : public Tool {
 public:
  std::string name() const override { return "fs.write"; }
  std::string description() const override {
    return "Create or replace a file of the workspace with the given content (directories are "
           "created as needed).";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}, {"description", "Path relative to the workspace"}}},
              {"content", {{"type", "string"}, {"description", "The whole new content"}}}}},
            {"required", {"path", "content"}}};
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string path = args["path"], content = args["content"];
    if (content.size() > kMaxWrite) {
      return Error(absl::StrCat("content of ", content.size(), " bytes is over the ", kMaxWrite,
                                "-byte limit of one write"));
    }
    // What it replaces, for the transcript's diff: read only as far as a diff is made
    // (a larger file is described, not diffed).
    bool truncated = false;
    absl::StatusOr<std::string> before =
        ReadFile(*ctx.workspace, path, kMaxDiffBytes + 1, &truncated);
    if (absl::Status s = WriteFile(*ctx.workspace, path, content); !s.ok()) return Error(s);
    ToolResult r{absl::StrCat("wrote ", content.size(), " bytes to ", path)};
    if (truncated || (!before.ok() && before.status().code() != absl::StatusCode::kNotFound)) {
      r.diff = absl::StrCat("--- a/", ValidUtf8(path), "\n+++ b/", ValidUtf8(path), "\n(replaced ",
                            truncated ? "a file too large to diff here"
                                      : absl::StrCat("a file that could not be read before: ",
                                                     before.status().message()),
                            "; now ", content.size(), " bytes)\n");
    } else {
      r.diff = FileDiff(path, before.ok() ? *before : "", content, before.ok());
    }
    return r;
  }
};

class EditTool final : public Tool {
 public:
  std::string name() const override { return "fs.edit"; }
  std::string description() const override {
    return "Replace one exact occurrence of old_text with new_text in a file. Fails when "
           "old_text does not occur, or occurs more than once (add context to make it unique).";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}}},
              {"old_text", {{"type", "string"}, {"description", "Text to find, exactly"}}},
              {"new_text", {{"type", "string"}, {"description", "Its replacement"}}}}},
            {"required", {"path", "old_text", "new_text"}}};
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string path = args["path"], old_text = args["old_text"], new_text = args["new_text"];
    if (old_text.empty()) return Error("old_text must not be empty");
    bool truncated = false;
    absl::StatusOr<std::string> data = ReadFile(*ctx.workspace, path, kMaxWrite, &truncated);
    if (!data.ok()) return Error(data.status());
    if (truncated) return Error(absl::StrCat("\"", path, "\" is too large to edit"));
    size_t first = data->find(old_text);
    if (first == std::string::npos) {
      return Error(absl::StrCat("old_text does not occur in ", path, ": nothing changed"));
    }
    size_t count = 0;
    for (size_t at = first; at != std::string::npos; at = data->find(old_text, at + 1)) ++count;
    if (count > 1) {
      return Error(absl::StrCat("old_text occurs ", count, " times in ", path,
                                ": include more context so that it occurs once; nothing changed"));
    }
    std::string updated = *data;
    updated.replace(first, old_text.size(), new_text);
    if (absl::Status s = WriteFile(*ctx.workspace, path, updated); !s.ok()) return Error(s);
    ToolResult r{absl::StrCat("edited ", path)};
    r.diff = FileDiff(path, *data, updated, true);
    return r;
  }
};

// Lists `dir` (a descriptor owned by the caller) into `out`, recursing when asked.
void ListDir(const Workspace& ws, const std::string& dir, bool recursive,
             std::vector<std::string>* out, bool* more) {
  absl::StatusOr<int> fd = ws.OpenAt(dir, O_RDONLY | O_DIRECTORY);
  if (!fd.ok()) return;
  DIR* d = fdopendir(*fd);
  if (d == nullptr) {
    close(*fd);
    return;
  }
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == ".git") continue;
    struct stat st {};
    bool is_dir =
        fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    entries.emplace_back(name, is_dir);
  }
  closedir(d);
  std::sort(entries.begin(), entries.end());
  for (const auto& [name, is_dir] : entries) {
    if (out->size() >= kMaxEntries) {
      *more = true;
      return;
    }
    std::string path = dir.empty() || dir == "." ? name : absl::StrCat(dir, "/", name);
    out->push_back(is_dir ? path + "/" : path);
    if (is_dir && recursive) ListDir(ws, path, true, out, more);
  }
}

class ListTool final : public Tool {
 public:
  std::string name() const override { return "fs.list"; }
  std::string description() const override {
    return "List a directory of the workspace (directories end with /).";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}, {"description", "Directory; default: the workspace"}}},
              {"recursive", {{"type", "boolean"}}}}}};
  }
  bool side_effect() const override { return false; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string path = args.value("path", ".");
    absl::StatusOr<int> fd = ctx.workspace->OpenAt(path, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) return Error(fd.status());
    close(*fd);
    std::vector<std::string> entries;
    bool more = false;
    ListDir(*ctx.workspace, path == "." ? "" : path, args.value("recursive", false), &entries,
            &more);
    std::string out = absl::StrJoin(entries, "\n");
    if (more) absl::StrAppend(&out, "\n[… more than ", kMaxEntries, " entries]");
    return {out.empty() ? "(empty)" : out};
  }
};

class SearchTool final : public Tool {
 public:
  std::string name() const override { return "fs.search"; }
  std::string description() const override {
    return "Find the lines of the workspace's text files that contain a literal string; "
           "answers path:line: text.";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"text", {{"type", "string"}, {"description", "Literal text to look for"}}},
              {"path", {{"type", "string"}, {"description", "Directory to search; default all"}}}}},
            {"required", {"text"}}};
  }
  bool side_effect() const override { return false; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string text = args["text"], dir = args.value("path", ".");
    if (text.empty()) return Error("text must not be empty");
    std::vector<std::string> files;
    bool more = false;
    absl::StatusOr<int> fd = ctx.workspace->OpenAt(dir, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) return Error(fd.status());
    close(*fd);
    ListDir(*ctx.workspace, dir == "." ? "" : dir, true, &files, &more);
    std::string out;
    size_t matches = 0;
    for (const std::string& f : files) {
      if (absl::EndsWith(f, "/")) continue;
      bool truncated = false;
      absl::StatusOr<std::string> data = ReadFile(*ctx.workspace, f, kMaxSearchFile, &truncated);
      if (!data.ok() || LooksBinary(*data)) continue;
      int line_no = 0;
      for (absl::string_view line : absl::StrSplit(*data, '\n')) {
        ++line_no;
        if (line.find(text) == absl::string_view::npos) continue;
        if (++matches > kMaxMatches) {
          absl::StrAppend(&out, "[… more than ", kMaxMatches, " matches]\n");
          return {out};
        }
        absl::StrAppend(&out, f, ":", line_no, ": ", line.substr(0, 300), "\n");
      }
    }
    return {out.empty() ? absl::StrCat("no line contains \"", text, "\"") : out};
  }
};

}  // namespace

std::vector<std::unique_ptr<Tool>> NewFsTools() {
  std::vector<std::unique_ptr<Tool>> out;
  out.push_back(std::make_unique<ReadTool>());
  out.push_back(std::make_unique<WriteTool>());
  out.push_back(std::make_unique<EditTool>());
  out.push_back(std::make_unique<ListTool>());
  out.push_back(std::make_unique<SearchTool>());
  return out;
}

}  // namespace agentd::tools
