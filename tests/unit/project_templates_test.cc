#include "manager/core/project_templates.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// What ListTemplates answers: each template's description, post-check, files and the
// {{variables}} they use; a template.yaml that is a link (to a file anyone may not read)
// or is huge is not read.
TEST(ProjectTemplatesTest, DescribesTemplatesAndReadsNoLinkedOrHugeSpec) {
  testing::TempDir dir;
  namespace fs = std::filesystem;
  fs::create_directories(dir.Join("projects/web/src"));
  testing::WriteFile(dir.Join("projects/web/template.yaml"),
                     "description: a web app\npost_check: [pytest, -q]\n");
  testing::WriteFile(dir.Join("projects/web/src/app.py"), "NAME = '{{name}}'  # {{ not_a_var }}\n");
  testing::WriteFile(dir.Join("projects/web/README.md"), "# {{title}}\n");
  fs::create_directories(dir.Join("projects/linked"));
  testing::WriteFile(dir.Join("secret.yaml"), "description: the secret text\n");
  ASSERT_EQ(
      symlink(dir.Join("secret.yaml").c_str(), dir.Join("projects/linked/template.yaml").c_str()),
      0);
  fs::create_directories(dir.Join("projects/huge"));
  testing::WriteFile(dir.Join("projects/huge/template.yaml"),
                     "description: " + std::string(300 << 10, 'x') + "\n");

  std::vector<v1::ProjectTemplate> all = ListProjectTemplates(dir.path());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name(), "huge");
  EXPECT_THAT(all[0].description(), HasSubstr("over 256 KiB: not read"));
  EXPECT_EQ(all[1].name(), "linked");
  EXPECT_THAT(all[1].description(), Not(HasSubstr("secret")));
  EXPECT_THAT(all[1].description(), HasSubstr("symbolic link: not read"));
  const v1::ProjectTemplate& web = all[2];
  EXPECT_EQ(web.name(), "web");
  EXPECT_EQ(web.description(), "a web app");
  EXPECT_THAT(web.post_check(), ElementsAre("pytest", "-q"));
  EXPECT_THAT(web.files(), ElementsAre("README.md", "src/app.py"));
  EXPECT_THAT(web.variables(), ElementsAre("name", "title"));
}

}  // namespace
}  // namespace agentd
