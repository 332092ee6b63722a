// The HTTP request path of agentd's listener (manager/web/web_server.cc): a request parsed
// as the listener parses it (Beast's request_parser with the listener's header and body
// limits), then agentd's own handling of what it holds — the gRPC-web body by its
// content-type and grpc-timeout, and the checks every request goes through
// (manager/web/http_checks.h: Host, cookie, bearer token, query, route and static path).
// Beast's parser is fed in two pieces, as a socket would.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "boost/beast/http.hpp"
#include "manager/web/grpc_web.h"
#include "manager/web/http_checks.h"
#include "tests/fuzz/fuzz_check.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t split = data[0] % size;  // where the first read ends
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  http::request_parser<http::string_body> parser;
  parser.body_limit(4 << 20);  // as web_server.cc: kMaxRequestBody
  parser.header_limit(64 << 10);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  if (split > 0 && !bytes.empty()) {
    used = parser.put(boost::asio::buffer(bytes.data(), std::min(split, bytes.size())), ec);
  }
  if (ec == http::error::need_more) ec = {};
  if (!ec) {
    // Never an empty buffer: asio makes it a null pointer, on which Beast 1.74's parser
    // does pointer arithmetic (UBSan: "applying non-zero offset to null pointer"). Beast's
    // own read loop never passes one; the listener only reads through it.
    std::string rest = bytes.substr(used);
    if (!rest.empty()) parser.put(boost::asio::buffer(rest), ec);
    if (ec == http::error::need_more) ec = {};
    if (!ec && !parser.is_done()) parser.put_eof(ec);
  }
  if (ec || !parser.is_done()) return 0;
  http::request<http::string_body> req = parser.release();
  std::string ct(req[http::field::content_type]);
  if (req.method() == http::verb::post && absl::StartsWith(ct, "application/grpc-web")) {
    (void)agentd::grpc_web::DecodeRequest(req.body(),
                                          absl::StartsWith(ct, "application/grpc-web-text"));
  }
  auto field = [&](http::field f) {
    auto it = req.find(f);
    return it == req.end() ? absl::string_view()
                           : absl::string_view(it->value().data(), it->value().size());
  };
  absl::string_view target(req.target().data(), req.target().size());
  size_t q = target.find('?');
  absl::string_view path = target.substr(0, q);
  absl::string_view query = q == absl::string_view::npos ? "" : target.substr(q + 1);
  static const boost::asio::ip::address kLocal = boost::asio::ip::make_address("127.0.0.1");
  static const std::vector<std::string> kNames = {"agentd.lan"};
  bool host_ok = agentd::web::HostAllowed(field(http::field::host), kLocal, kLocal, kNames);
  // Whatever the Host says, an allowed one has a name agentd accepts, nothing else.
  std::string name = agentd::web::HostName(field(http::field::host));
  if (host_ok) {
    boost::system::error_code ip_ec;
    (void)boost::asio::ip::make_address(name, ip_ec);
    FUZZ_CHECK(name == "localhost" || name == "agentd.lan" || !ip_ec);
  }
  (void)agentd::web::CookieValue(field(http::field::cookie), "agentd_session");
  (void)agentd::web::QueryParam(query, "code");
  if (auto token = agentd::web::BearerToken(field(http::field::authorization))) {
    FUZZ_CHECK(token->size() + 7 == field(http::field::authorization).size());
  }
  if (auto method = agentd::web::MethodOfPath(path)) {
    FUZZ_CHECK(!method->first.empty() && !method->second.empty());
    FUZZ_CHECK(method->first.find('/') == std::string::npos);
  }
  // A served file never leaves the UI's directory.
  if (std::optional<std::string> file = agentd::web::StaticFileOf(path)) {
    FUZZ_CHECK(absl::StartsWith(*file, "/"));
    FUZZ_CHECK(!absl::StrContains(*file, "..") && file->find('\0') == std::string::npos);
  }
  auto timeout = req.find("grpc-timeout");
  if (timeout != req.end()) {
    (void)agentd::grpc_web::ParseTimeout(std::string(timeout->value()));
  }
  return 0;
}
