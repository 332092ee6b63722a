// The gRPC-web wire format, as the bridge speaks it to browsers: frames, trailers, the
// base64 "-text" mode, and grpc-timeout. Pure functions, no I/O.
//
// A gRPC-web body is a sequence of frames: one flag byte (0x00 data, 0x80 trailers), a
// 4-byte big-endian length, then the payload. A response ends with exactly one trailer
// frame whose payload is HTTP/1-style header lines ("grpc-status:0\r\n"). In the -text
// mode every frame is base64-encoded on its own, so a body is padded base64 segments
// back to back.
#ifndef AGENTD_MANAGER_WEB_GRPC_WEB_H_
#define AGENTD_MANAGER_WEB_GRPC_WEB_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace agentd::grpc_web {

inline constexpr uint8_t kDataFrame = 0x00;
inline constexpr uint8_t kTrailerFrame = 0x80;

// `payload` behind its 5-byte prefix.
std::string Frame(uint8_t flags, absl::string_view payload);

// The trailer frame for a status: grpc-status, and grpc-message percent-encoded as the
// gRPC HTTP/2 spec asks (bytes outside printable ASCII, and '%').
std::string TrailerFrame(int code, absl::string_view message);

// The data frames' payloads in `body`, in order; a trailer frame in a request is an
// error, as is a truncated frame or a compressed one (the bridge advertises none).
// `text`: the body is base64 (concatenated padded segments allowed).
absl::StatusOr<std::vector<std::string>> DecodeRequest(absl::string_view body, bool text);

// grpc-timeout: 1–8 digits then a unit (H, M, S, m, u, n). INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view value);

// Percent-encoding of grpc-message (and its reverse, for tests and clients).
std::string PercentEncode(absl::string_view message);
std::string PercentDecode(absl::string_view encoded);

}  // namespace agentd::grpc_web

#endif  // AGENTD_MANAGER_WEB_GRPC_WEB_H_
