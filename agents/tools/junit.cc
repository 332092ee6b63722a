// Written here rather than with an XML library: the project depends on none, and a JUnit
// report is a flat list of <testcase> elements whose children say how each went; only
// their names and the kinds of child are read, attribute entities are decoded.
#include "agents/tools/junit.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace agentd::tools {
namespace {

std::string Attribute(absl::string_view tag, absl::string_view name) {
  for (size_t at = tag.find(name); at != absl::string_view::npos; at = tag.find(name, at + 1)) {
    bool starts = at > 0 && (tag[at - 1] == ' ' || tag[at - 1] == '\t' || tag[at - 1] == '\n');
    size_t eq = at + name.size();
    if (!starts || eq + 1 >= tag.size() || tag[eq] != '=') continue;
    char quote = tag[eq + 1];
    size_t end = tag.find(quote, eq + 2);
    if (end == absl::string_view::npos) return "";
    return absl::StrReplaceAll(
        tag.substr(eq + 2, end - eq - 2),
        {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}});
  }
  return "";
}

}  // namespace

absl::StatusOr<TestCounts> ParseJunit(absl::string_view xml) {
  TestCounts c;
  int cases = 0;
  for (size_t at = xml.find("<testcase"); at != absl::string_view::npos;
       at = xml.find("<testcase", at + 1)) {
    size_t tag_end = xml.find('>', at);
    if (tag_end == absl::string_view::npos) {
      return absl::InvalidArgumentError("the JUnit report is cut off inside a <testcase>");
    }
    absl::string_view tag = xml.substr(at, tag_end - at);
    ++cases;
    std::string name = Attribute(tag, "name"), cls = Attribute(tag, "classname");
    std::string full = cls.empty() ? name : absl::StrCat(cls, ".", name);
    if (tag.back() == '/') {  // <testcase … />: passed
      ++c.passed;
      continue;
    }
    size_t close = xml.find("</testcase>", tag_end);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("no </testcase> for ", full));
    }
    absl::string_view body = xml.substr(tag_end, close - tag_end);
    if (body.find("<failure") != absl::string_view::npos ||
        body.find("<error") != absl::string_view::npos) {
      ++c.failed;
      c.failing.push_back(full);
    } else if (body.find("<skipped") != absl::string_view::npos) {
      ++c.skipped;
    } else {
      ++c.passed;
    }
  }
  if (cases == 0) return absl::InvalidArgumentError("the JUnit report has no <testcase>");
  return c;
}

}  // namespace agentd::tools
