#include "manager/web/http_checks.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace agentd::web {

std::string HostName(absl::string_view host) {
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    host = close == absl::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
  } else if (size_t colon = host.rfind(':');
             colon != absl::string_view::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  std::string name = absl::AsciiStrToLower(host);
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

bool HostAllowed(absl::string_view host, const boost::asio::ip::address& local,
                 const boost::asio::ip::address& bound, const std::vector<std::string>& names) {
  std::string name = HostName(host);
  if (name == "localhost") return true;
  boost::system::error_code ec;
  boost::asio::ip::address ip = boost::asio::ip::make_address(name, ec);
  if (!ec) {
    // An address typed as such cannot be rebound; a loopback one, or the one the client
    // actually reached (the bound one, or an interface's when bound to 0.0.0.0), is ours.
    if (ip.is_v6() && ip.to_v6().is_v4_mapped()) {
      ip = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6());
    }
    return ip.is_loopback() || ip == local || ip == bound;
  }
  for (const std::string& h : names) {
    if (h == name) return true;
  }
  return false;
}

std::optional<std::string> QueryParam(absl::string_view query, absl::string_view name) {
  for (absl::string_view kv : absl::StrSplit(query, '&')) {
    std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first == name) return std::string(p.second);
  }
  return std::nullopt;
}

std::optional<std::string> CookieValue(absl::string_view header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    std::pair<absl::string_view, absl::string_view> p =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (p.first == name) return std::string(p.second);
  }
  return std::nullopt;
}

std::optional<absl::string_view> BearerToken(absl::string_view authorization) {
  constexpr absl::string_view kBearer = "bearer ";
  if (authorization.size() < kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return std::nullopt;
  }
  return authorization.substr(kBearer.size());
}

std::optional<std::pair<std::string, std::string>> MethodOfPath(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, "/")) return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) return std::nullopt;
  return std::make_pair(std::string(parts[0]), std::string(parts[1]));
}

std::optional<std::string> StaticFileOf(absl::string_view path) {
  if (!absl::StartsWith(path, "/") || absl::StrContains(path, "..") ||
      absl::StrContains(path, absl::string_view("\0", 1))) {
    return std::nullopt;
  }
  return path == "/" ? std::string("/index.html") : std::string(path);
}

}  // namespace agentd::web
