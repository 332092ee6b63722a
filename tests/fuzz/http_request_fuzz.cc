// The HTTP request path of agentd's listener (manager/web/web_server.cc): a request parsed
// as the listener parses it (Beast's request_parser with the listener's header and body
// limits), then agentd's own handling of what it holds — the gRPC-web body by its
// content-type and grpc-timeout. Beast's parser is fed in two pieces, as a socket would.
//
// The listener's route, cookie and Host checks live inside its session class; when they
// move to functions of their own they belong here too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "boost/beast/http.hpp"
#include "manager/web/grpc_web.h"

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
  auto timeout = req.find("grpc-timeout");
  if (timeout != req.end()) {
    (void)agentd::grpc_web::ParseTimeout(std::string(timeout->value()));
  }
  return 0;
}
