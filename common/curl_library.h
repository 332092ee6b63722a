// libcurl, opened when it is first needed instead of when a program starts.
//
// Why: libcurl (Debian's OpenSSL flavour) brings about thirty shared objects with it —
// GnuTLS, Kerberos, LDAP, SASL, SSH, RTMP, IDN — and the dynamic loader's work on them
// (relocations, symbol lookups, their constructors) was the largest part of an
// agentd-agent's start-up CPU and about 3.5 MB of its idle RSS. Every agent paid it,
// including those that never call a model: an idle pool, an always-on agent waiting for
// work, a `bootstrapper`. Opened with dlopen at its first use, as systemd opens its
// optional libraries, an agent pays it once, at its first model call (a few
// milliseconds), and one that makes none never does. agentd opens it for its first
// OTLP export or provider check.
//
// The library is libcurl.so.4 (Debian: libcurl4, which the package depends on). It is
// opened once per process and never closed; curl_global_init runs once, under the same
// std::call_once, before any handle is made.
//
// Calls go through the function pointers below, with the same arguments as libcurl's own
// functions (curl_easy_setopt's variadic value included). Thread-safe.
#ifndef AGENTD_COMMON_CURL_LIBRARY_H_
#define AGENTD_COMMON_CURL_LIBRARY_H_

#include <curl/curl.h>

#include "absl/status/statusor.h"

namespace agentd {

struct CurlLibrary {
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  CURLcode (*easy_perform)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// The loaded library. The first call opens it and initialises it; every later call
// returns the same pointer, or the same error: FAILED_PRECONDITION naming the library and
// dlopen's reason ("libcurl.so.4: cannot open shared object file ... (Debian: apt-get
// install libcurl4)"), or the missing function.
absl::StatusOr<const CurlLibrary*> Curl();

}  // namespace agentd

#endif  // AGENTD_COMMON_CURL_LIBRARY_H_
