#include "agents/tools/file_diff.h"

#include <dtl/dtl.hpp>

#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/text.h"

namespace agentd::tools {
namespace {

// Past these, a diff costs more than a transcript line is worth (dtl's O(ND) time and
// memory): the change is described instead.
constexpr size_t kMaxDiffLines = 50000;

std::vector<std::string> Lines(absl::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  if (text.back() == '\n') text.remove_suffix(1);
  // As they are: two lines that differ only in bytes that are not UTF-8 still differ.
  for (absl::string_view l : absl::StrSplit(text, '\n')) out.push_back(std::string(l));
  return out;
}

}  // namespace

std::string FileDiff(absl::string_view path, absl::string_view before, absl::string_view after,
                     bool existed) {
  if (existed && before == after) return "";
  const std::string name = ValidUtf8(path);
  std::string head = absl::StrCat("--- ", existed ? absl::StrCat("a/", name) : "/dev/null",
                                  "\n+++ b/", name, "\n");
  if (before.find('\0') != absl::string_view::npos || after.find('\0') != absl::string_view::npos) {
    return absl::StrCat(head, "(binary file: ", before.size(), " -> ", after.size(), " bytes)\n");
  }
  std::vector<std::string> a = Lines(before), b = Lines(after);
  if (before.size() + after.size() > kMaxDiffBytes || a.size() + b.size() > kMaxDiffLines) {
    return absl::StrCat(head, "(too large to diff here: ", a.size(), " -> ", b.size(), " lines, ",
                        before.size(), " -> ", after.size(), " bytes)\n");
  }
  dtl::Diff<std::string, std::vector<std::string>> diff(a, b);
  diff.compose();
  diff.composeUnifiedHunks();
  std::ostringstream out;
  diff.printUnifiedFormat(out);
  std::string hunks = out.str();
  if (hunks.empty() && a.empty() && b.empty()) return absl::StrCat(head, "(empty file)\n");
  // Only the final newline differs: the lines are equal, and dtl sees no change.
  if (hunks.empty()) {
    return absl::StrCat(head, "(only the newline at the end of the file changed)\n");
  }
  return absl::StrCat(head, ValidUtf8(hunks));
}

}  // namespace agentd::tools
