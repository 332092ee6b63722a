// Text helpers for bytes that programs wrote: log lines are not necessarily UTF-8.
#ifndef AGENTD_COMMON_TEXT_H_
#define AGENTD_COMMON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace agentd {

// `bytes` as valid UTF-8: each byte that is not part of a well-formed sequence becomes
// U+FFFD. For protobuf `string` fields, which must hold UTF-8.
std::string ValidUtf8(absl::string_view bytes);

// `bytes` made safe for a terminal: control characters (tab excepted), DEL and bytes that
// are not well-formed UTF-8 become \xHH; everything else, UTF-8 included, is kept.
std::string EscapeForTerminal(absl::string_view bytes);

}  // namespace agentd

#endif  // AGENTD_COMMON_TEXT_H_
