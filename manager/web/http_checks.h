// HTTP request checks: what agentd's HTTP listener decides from a request's own bytes
// before any handler runs — whether its Host names this listener (DNS rebinding), which
// session cookie, bearer token or query parameter it carries, which gRPC method a
// gRPC-web path names, and which file of the UI a path may serve.
//
// Pure functions of their arguments, kept apart from the listener (web_server.cc) so
// that they can be fuzzed and unit-tested with hostile input; thread-safe.
#ifndef AGENTD_MANAGER_WEB_HTTP_CHECKS_H_
#define AGENTD_MANAGER_WEB_HTTP_CHECKS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "boost/asio/ip/address.hpp"

namespace agentd::web {

// The host part of a Host header value, lower case, without port, brackets or a
// trailing dot: "LocalHost.:80" -> "localhost", "[::1]:7878" -> "::1".
std::string HostName(absl::string_view host);

// Whether a Host header value names this listener: "localhost", a loopback address, the
// address the client reached (`local`), the bound address (`bound`), or one of `names`
// (server.http_hosts, lower case). A page whose DNS name was rebound to this address
// sends its own name, which is none of these.
bool HostAllowed(absl::string_view host, const boost::asio::ip::address& local,
                 const boost::asio::ip::address& bound, const std::vector<std::string>& names);

// The value of query parameter `name` in `query` ("a=1&code=x"), as sent (codes and
// tokens need no percent-decoding); nullopt when absent.
std::optional<std::string> QueryParam(absl::string_view query, absl::string_view name);

// The value of cookie `name` in a Cookie header ("a=1; agentd_session=x"); nullopt
// when absent.
std::optional<std::string> CookieValue(absl::string_view header, absl::string_view name);

// The token of an Authorization header value "Bearer <token>" (scheme case-insensitive);
// nullopt for any other scheme or shape.
std::optional<absl::string_view> BearerToken(absl::string_view authorization);

// {service, method} of a gRPC-web path "/pkg.Service/Method"; nullopt when the path has
// another shape (more or fewer parts, an empty one).
std::optional<std::pair<std::string, std::string>> MethodOfPath(absl::string_view path);

// The file under the UI's directory a GET of `path` may serve, relative and starting
// with "/" ("/" -> "/index.html"); nullopt when the path could leave the directory or
// cannot name a file ("..", NUL, no leading "/").
std::optional<std::string> StaticFileOf(absl::string_view path);

}  // namespace agentd::web

#endif  // AGENTD_MANAGER_WEB_HTTP_CHECKS_H_
