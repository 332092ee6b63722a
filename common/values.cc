#include "common/values.h"

#include <cctype>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace agentd {

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid duration \"", text, "\" (expected a number with a unit: 500ms, 10s, 5m, 1h)"));
  };
  // absl accepts a bare "0" and "inf"; a configuration value must say its unit.
  if (t.empty() || t == "inf" || t == "-inf" || std::isdigit(static_cast<unsigned char>(t.back())))
    return bad();
  absl::Duration d;
  if (!absl::ParseDuration(t, &d)) return bad();
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid duration \"", text, "\" (must not be negative)"));
  }
  return d;
}

std::string FormatDuration(absl::Duration d) { return absl::FormatDuration(d); }

std::string FormatByteSize(int64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return absl::StrCat(bytes, "B");
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f%s", v, kUnits[u]);
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  size_t i = 0;
  while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
  absl::string_view num = t.substr(0, i);
  absl::string_view unit = absl::StripAsciiWhitespace(t.substr(i));
  double value = 0;
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid size \"", text,
                     "\" (expected a number with an optional unit: 512B, 4KiB, "
                     "64MiB, 1GiB, 10MB)"));
  };
  if (num.empty() || !absl::SimpleAtod(num, &value)) return bad();
  double mult = 0;
  struct Unit {
    absl::string_view name;
    double mult;
  };
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"B", 1},
                                    {"KiB", 1024.0},
                                    {"MiB", 1024.0 * 1024},
                                    {"GiB", 1024.0 * 1024 * 1024},
                                    {"TiB", 1024.0 * 1024 * 1024 * 1024},
                                    {"KB", 1e3},
                                    {"kB", 1e3},
                                    {"MB", 1e6},
                                    {"GB", 1e9},
                                    {"TB", 1e12}};
  for (const Unit& u : kUnits) {
    if (unit == u.name) mult = u.mult;
  }
  if (mult == 0) return bad();
  double bytes = value * mult;
  if (bytes > static_cast<double>(std::numeric_limits<int64_t>::max())) return bad();
  return static_cast<int64_t>(bytes);
}

absl::StatusOr<std::string> ExpandEnv(
    absl::string_view text,
    const std::function<std::optional<std::string>(absl::string_view)>& lookup) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out.push_back(c);
      continue;
    }
    if (text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out.push_back(c);
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unterminated \"${\" in \"", text,
                                                     "\" (expected ${NAME} or ${NAME:-fallback})"));
    }
    absl::string_view body = text.substr(i + 2, close - i - 2);
    absl::string_view name = body;
    std::optional<absl::string_view> fallback;
    if (size_t sep = body.find(":-"); sep != absl::string_view::npos) {
      name = body.substr(0, sep);
      fallback = body.substr(sep + 2);
    }
    bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char n : name) valid = valid && (std::isalnum(static_cast<unsigned char>(n)) || n == '_');
    if (!valid) {
      return absl::InvalidArgumentError(absl::StrCat("invalid variable name \"", name, "\" in \"",
                                                     text, "\" (expected letters, digits, _)"));
    }
    std::optional<std::string> value = lookup(name);
    if (value.has_value() && !value->empty()) {
      out += *value;
    } else if (fallback.has_value()) {
      out.append(fallback->data(), fallback->size());
    } else if (value.has_value()) {
      out += *value;  // set but empty, no fallback: empty, as the shell does
    } else {
      return absl::InvalidArgumentError(absl::StrCat("environment variable ", name,
                                                     " is not set (use ${", name,
                                                     ":-fallback} for a default)"));
    }
    i = close;
  }
  return out;
}

}  // namespace agentd
