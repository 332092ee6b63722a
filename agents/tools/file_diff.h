// FileDiff: a file's change as a unified diff (`--- a/path`, `+++ b/path`, hunks with
// three lines of context), for people reading a task's transcript. The diff itself comes
// from dtl (Debian's libdtl-dev, header-only), a library made for it.
//
// Text that is not UTF-8 is made valid first, so the result is always valid UTF-8 (the
// transcript is a proto). A binary file (one with a NUL byte) or one too large to diff
// quickly is described in one line instead. Pure; thread-safe.
#ifndef AGENTD_AGENTS_TOOLS_FILE_DIFF_H_
#define AGENTD_AGENTS_TOOLS_FILE_DIFF_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace agentd::tools {

// Past this many bytes (before and after together) a change is described, not diffed.
constexpr size_t kMaxDiffBytes = 2 << 20;

// `existed` false: the file is new (its "before" is /dev/null). Empty when nothing changed.
std::string FileDiff(absl::string_view path, absl::string_view before, absl::string_view after,
                     bool existed);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_FILE_DIFF_H_
