// Event kinds are declared once (manager/store/event_kinds.h): events.proto documents
// exactly those, and the daemon's code records each. (That it records no other is held
// by every test's daemon, which refuses an undeclared kind: AGENTD_STRICT.)
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "manager/store/event_kinds.h"

namespace agentd::testing {
namespace {

std::string ReadSource(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::set<std::string> Declared() {
  std::set<std::string> out;
  for (const EventKind& k : kEventKinds) out.emplace(k.name);
  return out;
}

TEST(EventKindsTest, EachKindIsDeclaredOnceAsResourceDotChangeWithWhenItIsRecorded) {
  std::set<std::string> seen;
  const std::regex shape("[a-z]+\\.[a-z_]+");
  for (const EventKind& k : kEventKinds) {
    std::string name(k.name);
    EXPECT_TRUE(seen.insert(name).second) << name << " is declared twice";
    EXPECT_TRUE(std::regex_match(name, shape)) << name;
    EXPECT_FALSE(k.when.empty()) << name;
  }
  EXPECT_TRUE(IsEventKind("task.assigned"));
  EXPECT_FALSE(IsEventKind("task.status"));
}

TEST(EventKindsTest, EventsProtoDocumentsExactlyTheDeclaredKinds) {
  std::string proto = ReadSource(AGENTD_SOURCE_ROOT "/proto/agentd/v1/events.proto");
  size_t message = proto.find("message Event {");
  ASSERT_NE(message, std::string::npos);
  size_t field = proto.find("string kind = 3;", message);
  ASSERT_NE(field, std::string::npos);
  // The comment block right above the field.
  size_t start = proto.rfind(";", field - 1);
  std::string comment = proto.substr(start, field - start);
  std::set<std::string> documented;
  const std::regex quoted("\"([a-z]+\\.[a-z_]+)\"");
  for (std::sregex_iterator it(comment.begin(), comment.end(), quoted), end; it != end; ++it) {
    documented.insert((*it)[1]);
  }
  EXPECT_EQ(documented, Declared()) << comment;
}

TEST(EventKindsTest, TheDaemonsCodeRecordsEveryDeclaredKind) {
  // Every .cc of the daemon, comments left out.
  std::string code;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(AGENTD_SOURCE_ROOT "/manager")) {
    if (e.path().extension() != ".cc") continue;
    std::istringstream in(ReadSource(e.path().string()));
    for (std::string line; std::getline(in, line);) {
      size_t comment = line.find("//");
      code += line.substr(0, comment == std::string::npos ? line.size() : comment);
      code += '\n';
    }
  }
  ASSERT_FALSE(code.empty());
  for (const EventKind& k : kEventKinds) {
    EXPECT_NE(code.find("\"" + std::string(k.name) + "\""), std::string::npos)
        << k.name << " is declared and documented, but no code records it";
  }
}

}  // namespace
}  // namespace agentd::testing
