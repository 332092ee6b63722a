#include "manager/core/project_templates.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "yaml-cpp/yaml.h"

namespace agentd {
namespace {

namespace fs = std::filesystem;

// Listing is a read-only RPC answered on a gRPC thread: what it reads is bounded, so a
// template of huge files (or very many templates) cannot make every call slow. Files are
// searched for {{variables}} in their first kSearchBytes, and a call reads at most
// kCallBytes in all; a template.yaml over kSpecBytes is not parsed.
constexpr size_t kMaxFiles = 500;
constexpr size_t kMaxTemplates = 200;
constexpr size_t kSearchBytes = 256 << 10;
constexpr size_t kCallBytes = 16 << 20;
constexpr uintmax_t kSpecBytes = 256 << 10;

// The {{name}} placeholders in `text` (letters, digits and '_').
void Variables(const std::string& text, std::set<std::string>* out) {
  for (size_t at = text.find("{{"); at != std::string::npos; at = text.find("{{", at + 2)) {
    size_t end = text.find("}}", at + 2);
    if (end == std::string::npos || end - at > 66) continue;
    std::string name = text.substr(at + 2, end - at - 2);
    bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (word) out->insert(name);
  }
}

v1::ProjectTemplate Describe(const fs::path& dir, size_t* budget) {
  v1::ProjectTemplate t;
  t.set_name(ValidUtf8(dir.filename().string()));
  const fs::path spec = dir / "template.yaml";
  // The bootstrapper copies no link; the listing reads none either (a template.yaml
  // linked to a file elsewhere is not shown to every client). Opened once, without
  // following a link or waiting on a FIFO, and checked on the descriptor read.
  std::string text;
  std::string problem;
  int fd = open(spec.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    problem = errno == ELOOP ? "(template.yaml is a symbolic link: not read)"
                             : absl::StrCat("(", spec.string(), ": ", std::strerror(errno), ")");
  } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    problem = "(template.yaml is not a regular file: not read)";
  } else if (static_cast<uintmax_t>(st.st_size) > kSpecBytes) {
    problem = absl::StrCat("(template.yaml is over ", kSpecBytes >> 10, " KiB: not read)");
  } else {
    char buf[8192];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0 && text.size() <= kSpecBytes;) {
      text.append(buf, static_cast<size_t>(n));
    }
  }
  if (fd >= 0) close(fd);
  if (!problem.empty()) {
    t.set_description(ValidUtf8(problem));
  } else {
    try {
      YAML::Node y = YAML::Load(text);
      if (y["description"] && y["description"].IsScalar()) {
        t.set_description(ValidUtf8(y["description"].Scalar()));
      }
      if (y["post_check"] && y["post_check"].IsSequence()) {
        for (const YAML::Node& a : y["post_check"]) {
          if (a.IsScalar()) t.add_post_check(ValidUtf8(a.Scalar()));
        }
      }
    } catch (const YAML::Exception& e) {
      t.set_description(ValidUtf8(absl::StrCat("(", spec.string(), ":", e.mark.line + 1, ":",
                                               e.mark.column + 1, ": ", e.msg, ")")));
    }
  }
  std::set<std::string> vars;
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       it != end && files.size() < kMaxFiles; it.increment(ec)) {
    if (ec) break;
    // Only regular files, never through a link: what the bootstrapper copies.
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    const fs::path rel = fs::relative(it->path(), dir, ec);
    if (ec || rel == "template.yaml") continue;
    files.push_back(ValidUtf8(rel.string()));
    if (*budget == 0) continue;  // named, not searched
    std::ifstream in(it->path(), std::ios::binary);
    const uintmax_t size = it->file_size(ec);
    std::string head(
        static_cast<size_t>(std::min<uintmax_t>({ec ? uintmax_t{0} : size, kSearchBytes, *budget})),
        '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    *budget -= head.size();
    Variables(head, &vars);
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) t.add_files(f);
  for (const std::string& v : vars) t.add_variables(ValidUtf8(v));
  return t;
}

}  // namespace

std::vector<v1::ProjectTemplate> ListProjectTemplates(const std::string& templates_dir) {
  std::vector<v1::ProjectTemplate> out;
  std::error_code ec;
  const fs::path root = fs::path(templates_dir) / "projects";
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end());
  if (dirs.size() > kMaxTemplates) dirs.resize(kMaxTemplates);
  size_t budget = kCallBytes;
  for (const fs::path& d : dirs) out.push_back(Describe(d, &budget));
  std::sort(out.begin(), out.end(), [](const v1::ProjectTemplate& a, const v1::ProjectTemplate& b) {
    return a.name() < b.name();
  });
  return out;
}

}  // namespace agentd
