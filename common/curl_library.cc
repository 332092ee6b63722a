#include "common/curl_library.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace agentd {
namespace {

constexpr char kLibrary[] = "libcurl.so.4";

// Resolves `name` into `*fn`; false (with `*error` set) when the library lacks it.
template <typename Fn>
bool Resolve(void* library, const char* name, Fn* fn, std::string* error) {
  dlerror();
  void* symbol = dlsym(library, name);
  if (symbol == nullptr) {
    const char* why = dlerror();
    *error =
        absl::StrCat(kLibrary, " has no ", name, why != nullptr ? absl::StrCat(": ", why) : "");
    return false;
  }
  *fn = reinterpret_cast<Fn>(symbol);
  return true;
}

absl::StatusOr<const CurlLibrary*> Open() {
  // RTLD_LOCAL: its symbols (and its dependencies' OpenSSL, GnuTLS, ...) do not take part
  // in resolving anyone else's; RTLD_NOW: a missing symbol fails here, not mid-call.
  void* library = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot load ", kLibrary, " (HTTP for model calls and exports): ",
        why != nullptr ? why : "unknown error", " (Debian: apt-get install libcurl4)"));
  }
  static CurlLibrary lib;
  std::string error;
  CURLcode (*global_init)(long) = nullptr;
  if (!Resolve(library, "curl_global_init", &global_init, &error) ||
      !Resolve(library, "curl_easy_init", &lib.easy_init, &error) ||
      !Resolve(library, "curl_easy_cleanup", &lib.easy_cleanup, &error) ||
      !Resolve(library, "curl_easy_reset", &lib.easy_reset, &error) ||
      !Resolve(library, "curl_easy_setopt", &lib.easy_setopt, &error) ||
      !Resolve(library, "curl_easy_getinfo", &lib.easy_getinfo, &error) ||
      !Resolve(library, "curl_easy_perform", &lib.easy_perform, &error) ||
      !Resolve(library, "curl_easy_strerror", &lib.easy_strerror, &error) ||
      !Resolve(library, "curl_slist_append", &lib.slist_append, &error) ||
      !Resolve(library, "curl_slist_free_all", &lib.slist_free_all, &error)) {
    return absl::FailedPreconditionError(error);
  }
  if (CURLcode rc = global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("curl_global_init failed (", lib.easy_strerror(rc), ")"));
  }
  return &lib;
}

}  // namespace

absl::StatusOr<const CurlLibrary*> Curl() {
  static std::once_flag once;
  static absl::StatusOr<const CurlLibrary*>* loaded = nullptr;
  std::call_once(once, [] { loaded = new absl::StatusOr<const CurlLibrary*>(Open()); });
  return *loaded;
}

}  // namespace agentd
