// Text helpers for bytes that come from outside: what models, programs, files and peers
// write is not necessarily UTF-8, and a cut at a byte count may land inside a character.
//
// Every string that enters a protobuf `string` field or a JSON document (nlohmann's dump()
// throws on invalid UTF-8) goes through ValidUtf8 — or, when it must also fit a size,
// Utf8Prefix/Utf8Suffix — first. All functions are pure and thread-safe.
#ifndef AGENTD_COMMON_TEXT_H_
#define AGENTD_COMMON_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace agentd {

// Whether `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view bytes);

// `bytes` as valid UTF-8: each byte that is not part of a well-formed sequence becomes
// U+FFFD (so Latin-1 "caf\xe9" reads "caf\uFFFD"). Valid input comes back unchanged.
// When `replaced` is not null it receives how many bytes were replaced.
std::string ValidUtf8(absl::string_view bytes, size_t* replaced = nullptr);

// The longest prefix of `bytes` of at most `max_bytes` bytes that does not end inside a
// UTF-8 sequence: a cut that would split a character moves back to its start. Bytes that
// are not UTF-8 are left as they are (cut anywhere); pass the result through ValidUtf8
// when it must be valid. Returns a size <= min(max_bytes, bytes.size()).
size_t Utf8CutPoint(absl::string_view bytes, size_t max_bytes);

// `bytes` made valid (ValidUtf8) and, when longer than `max_bytes`, cut on a character
// boundary with `marker` ("...", "…") appended so that the whole is at most `max_bytes`
// (the marker is dropped when even it does not fit). Always valid UTF-8 when `marker` is.
std::string Utf8Prefix(absl::string_view bytes, size_t max_bytes, absl::string_view marker = "");

// Where the last `max_bytes` bytes of `bytes` start, moved forward past the continuation
// bytes of a character whose start falls before it (at most three). 0 when it all fits.
// For caps that keep the end of a buffer in place: buf.erase(0, Utf8SuffixStart(buf, n)).
size_t Utf8SuffixStart(absl::string_view bytes, size_t max_bytes);

// The end of `bytes`: its last `max_bytes` bytes at most, starting on a character
// boundary (the continuation bytes of a character cut at the front are dropped), then
// made valid (ValidUtf8, which may lengthen what was not UTF-8). For "keep the last N
// bytes of the output" caps.
std::string Utf8Suffix(absl::string_view bytes, size_t max_bytes);

// `text` made safe to show on a terminal, with nothing hidden: C0 controls, DEL, C1
// controls (U+0080–U+009F; 0x9b is CSI to some terminals), the bidi embeddings,
// overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C)
// and the line and paragraph separators are written visibly as \r, \n, \t, \xHH or
// \uHHHH, and so are bytes that are not UTF-8 (\xHH). With `keep_newlines` newline and
// tab are kept (a multi-line field); without, they are escaped too, so that a value cannot
// forge the lines after it. Printable text, UTF-8 included, is kept. Applying it twice
// changes nothing more. Everything a model, a program or a workspace wrote passes through
// it before a person reads it: agentctl's output, the consent summaries agentd writes.
std::string EscapeForTerminal(absl::string_view text, bool keep_newlines = false);

}  // namespace agentd

#endif  // AGENTD_COMMON_TEXT_H_
