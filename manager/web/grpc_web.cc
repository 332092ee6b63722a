#include "manager/web/grpc_web.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace agentd::grpc_web {

std::string Frame(uint8_t flags, absl::string_view payload) {
  std::string f;
  f.reserve(5 + payload.size());
  uint32_t n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>(n >> 24));
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.append(payload.data(), payload.size());
  return f;
}

std::string TrailerFrame(int code, absl::string_view message) {
  std::string t = absl::StrCat("grpc-status:", code, "\r\n");
  if (!message.empty()) absl::StrAppend(&t, "grpc-message:", PercentEncode(message), "\r\n");
  return Frame(kTrailerFrame, t);
}

namespace {

// Base64 segments back to back, each padded: decode up to and including each '='-padded
// quartet on its own (absl rejects padding in the middle of one string).
absl::StatusOr<std::string> DecodeText(absl::string_view body) {
  std::string compact;
  compact.reserve(body.size());
  for (char c : body) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  }
  std::string out;
  size_t start = 0;
  while (start < compact.size()) {
    size_t end = compact.size();
    for (size_t q = start; q + 4 <= compact.size(); q += 4) {
      if (compact[q + 3] == '=') {
        end = q + 4;
        break;
      }
    }
    std::string part;
    if (!absl::Base64Unescape(absl::string_view(compact).substr(start, end - start), &part)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the application/grpc-web-text body is not base64 (at byte ", start, ")"));
    }
    out += part;
    start = end;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> DecodeRequest(absl::string_view body, bool text) {
  std::string decoded;
  if (text) {
    absl::StatusOr<std::string> d = DecodeText(body);
    if (!d.ok()) return d.status();
    decoded = *std::move(d);
    body = decoded;
  }
  std::vector<std::string> messages;
  size_t at = 0;
  while (at < body.size()) {
    if (body.size() - at < 5) {
      return absl::InvalidArgumentError(
          absl::StrCat("gRPC-web request: a frame header is cut short at byte ", at));
    }
    auto byte = [&](size_t i) { return static_cast<uint8_t>(body[at + i]); };
    uint8_t flags = byte(0);
    uint32_t n = (uint32_t{byte(1)} << 24) | (uint32_t{byte(2)} << 16) | (uint32_t{byte(3)} << 8) |
                 uint32_t{byte(4)};
    if (body.size() - at - 5 < n) {
      return absl::InvalidArgumentError(absl::StrCat("gRPC-web request: the frame at byte ", at,
                                                     " says ", n, " bytes but ",
                                                     body.size() - at - 5, " follow"));
    }
    if (flags & kTrailerFrame) {
      return absl::InvalidArgumentError("gRPC-web request: a request carries no trailer frame");
    }
    if (flags & 0x01) {
      return absl::UnimplementedError(
          "gRPC-web request: compressed messages are not accepted (agentd advertises no "
          "grpc-accept-encoding)");
    }
    messages.emplace_back(body.substr(at + 5, n));
    at += 5 + n;
  }
  return messages;
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view value) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("grpc-timeout \"", value, "\": expected 1-8 digits and a unit (H M S m u n)"));
  };
  if (value.size() < 2 || value.size() > 9) return bad();
  int64_t n = 0;
  if (!absl::SimpleAtoi(value.substr(0, value.size() - 1), &n) || n < 0) return bad();
  for (char c : value.substr(0, value.size() - 1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return bad();
  }
  switch (value.back()) {
    case 'H':
      return absl::Hours(n);
    case 'M':
      return absl::Minutes(n);
    case 'S':
      return absl::Seconds(n);
    case 'm':
      return absl::Milliseconds(n);
    case 'u':
      return absl::Microseconds(n);
    case 'n':
      return absl::Nanoseconds(n);
    default:
      return bad();
  }
}

std::string PercentEncode(absl::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c < 0x20 || c > 0x7e || c == '%') {
      absl::StrAppendFormat(&out, "%%%02X", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    int hi = 0, lo = 0;
    if (encoded[i] == '%' && i + 2 < encoded.size() &&
        absl::ascii_isxdigit(static_cast<unsigned char>(encoded[i + 1])) &&
        absl::ascii_isxdigit(static_cast<unsigned char>(encoded[i + 2]))) {
      auto hex = [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c))
                   ? c - '0'
                   : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
      };
      hi = hex(encoded[i + 1]);
      lo = hex(encoded[i + 2]);
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(encoded[i]);
    }
  }
  return out;
}

}  // namespace agentd::grpc_web
