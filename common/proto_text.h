// Text rules for protobuf messages from outside: every string valid UTF-8 (protobuf
// refuses to parse a message with a bad string, and json::dump() throws on one), and a
// message kept within a size by cutting its longest texts, saying so in them.
//
// Pure functions of their argument; thread-safe on distinct messages.
#ifndef AGENTD_COMMON_PROTO_TEXT_H_
#define AGENTD_COMMON_PROTO_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "google/protobuf/message.h"

namespace agentd {

// Every string field of `m` and of its sub-messages made valid UTF-8 (ValidUtf8), in
// place. Bytes fields are left as they are.
void MakeStringsUtf8(google::protobuf::Message* m);

// Every string field of `m` and of its sub-messages replaced by `fn` of it, in place.
void TransformStrings(google::protobuf::Message* m,
                      const std::function<std::string(const std::string&)>& fn);

// Cuts the longest string fields of `m` (and of its sub-messages) until its serialized
// size is at most `max_bytes`, each on a character boundary and ending with a line that
// says how many bytes were cut from it. Returns the bytes cut in all (0 when `m` fit).
// A message whose other fields alone exceed `max_bytes` is cut as far as its strings go.
int64_t FitStrings(google::protobuf::Message* m, size_t max_bytes);

}  // namespace agentd

#endif  // AGENTD_COMMON_PROTO_TEXT_H_
