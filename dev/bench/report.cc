// dev/bench/report: turns the figures the benchmarks appended (one JSON object a line,
// bench_util.h's Report) into the JSON file `dev/bench/run --json FILE` writes, and prints
// them as one table: figure, value, baseline, ratio, budget, met.
//
//   bench_report LINES.jsonl [--json FILE] [--compare EARLIER.json]
//
// --compare adds a column with each figure's value from an earlier --json file (matched by
// benchmark and name), so a change can be shown before and after.
#include <sys/utsname.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace {

using nlohmann::json;

std::string Num(const json& v) {
  if (!v.is_number()) return "-";
  double x = v.get<double>();
  double a = std::fabs(x);
  if (a >= 1000) return absl::StrFormat("%.0f", x);
  if (a >= 100) return absl::StrFormat("%.1f", x);
  if (a >= 1) return absl::StrFormat("%.2f", x);
  return absl::StrFormat("%.3g", x);
}

std::string Budget(const json& f) {
  if (!f.contains("budget")) return "";
  const json& b = f["budget"];
  std::string what = b.value("on", "") == "ratio" ? "ratio" : "value";
  return absl::StrCat(what, " ", b.value("op", ""), " ", Num(b["limit"]));
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_report LINES.jsonl [--json FILE] [--compare EARLIER.json]\n");
    return 2;
  }
  std::string out_path, compare_path;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--json") {
      out_path = argv[i + 1];
    } else if (a == "--compare") {
      compare_path = argv[i + 1];
    } else {
      std::fprintf(stderr, "bench_report: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  json figures = json::array();
  std::ifstream in(argv[1]);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    json f = json::parse(line, nullptr, false);
    if (!f.is_object()) {
      std::fprintf(stderr, "bench_report: %s:%d: not a JSON object\n", argv[1], lineno);
      return 1;
    }
    figures.push_back(std::move(f));
  }
  std::map<std::string, json> earlier;
  if (!compare_path.empty()) {
    std::ifstream c(compare_path);
    json old = json::parse(c, nullptr, false);
    if (!old.is_object() || !old["figures"].is_array()) {
      std::fprintf(stderr, "bench_report: %s: not a dev/bench/run --json file\n",
                   compare_path.c_str());
      return 1;
    }
    for (const json& f : old["figures"])
      earlier[absl::StrCat(f.value("bench", ""), "\t", f.value("name", ""))] = f["value"];
  }

  utsname u{};
  uname(&u);
  int met = 0, missed = 0;
  for (const json& f : figures) {
    if (!f.contains("met")) continue;
    (f["met"].get<bool>() ? met : missed)++;
  }
  json doc = {{"time", absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())},
              {"machine",
               {{"cores", std::thread::hardware_concurrency()},
                {"kernel", absl::StrCat(u.sysname, " ", u.release)},
                {"load_average", LoadAverage()}}},
              {"budgets", {{"met", met}, {"missed", missed}}},
              {"figures", figures}};
  if (!out_path.empty()) {
    std::ofstream o(out_path);
    o << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    if (!o) {
      std::fprintf(stderr, "bench_report: cannot write %s\n", out_path.c_str());
      return 1;
    }
  }

  // The table: one row a figure, columns as wide as their widest cell.
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"figure", "value", "baseline", "ratio", "budget", "met"};
  if (!compare_path.empty()) head.insert(head.begin() + 1, "before");
  rows.push_back(head);
  for (const json& f : figures) {
    std::string unit = f.value("unit", "");
    std::vector<std::string> r = {
        absl::StrCat(f.value("bench", ""), ": ", f.value("name", "")),
        absl::StrCat(Num(f["value"]), unit.empty() ? "" : " ", unit),
        f["baseline_value"].is_number()
            ? absl::StrCat(Num(f["baseline_value"]), " (", f.value("baseline", ""), ")")
            : f.value("baseline", ""),
        Num(f["ratio"]),
        Budget(f),
        f.contains("met") ? (f["met"].get<bool>() ? "yes" : "NO") : ""};
    if (!compare_path.empty()) {
      auto it = earlier.find(absl::StrCat(f.value("bench", ""), "\t", f.value("name", "")));
      r.insert(r.begin() + 1, it == earlier.end() ? "" : Num(it->second));
    }
    rows.push_back(std::move(r));
  }
  std::vector<size_t> width(head.size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::printf("\n");
  for (const auto& r : rows) {
    std::string text;
    for (size_t i = 0; i < r.size(); ++i) {
      absl::StrAppend(&text, r[i],
                      i + 1 < r.size() ? std::string(width[i] - r[i].size() + 2, ' ') : "");
    }
    std::printf("%s\n", text.c_str());
  }
  std::printf("\nbudgets met %d of %d (%d cores, load average %s)%s%s\n", met, met + missed,
              static_cast<int>(std::thread::hardware_concurrency()), LoadAverage().c_str(),
              out_path.empty() ? "" : "; written to ", out_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
