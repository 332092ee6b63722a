// git.status, git.diff, git.commit, git.checkpoint, git.rollback: the workspace as a git
// repository. Checkpoints are commits of the whole tree (untracked files included,
// ignored ones not) kept under refs/agentd/checkpoints/, made with a private index so the
// agent's staging area and branch are never touched; a rollback puts the files back as
// they were at a checkpoint, removing those made since.
#include <fcntl.h>
#include <unistd.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agents/tools/shell.h"
#include "agents/tools/tool.h"

namespace agentd::tools {
namespace {

using nlohmann::json;

// Runs git in the workspace (never sandboxed: it only touches the workspace and needs no
// network for these), with agentd's identity unless the repository has one.
absl::StatusOr<ShellResult> Git(const ToolContext& ctx, std::vector<std::string> args,
                                std::vector<std::string> env = {}) {
  ShellOptions o = *ctx.shell;
  o.sandbox = "off";
  o.env = std::move(env);
  o.output_cap = 1 << 20;
  std::vector<std::string> argv = {"git",
                                   "-c",
                                   "user.name=agentd",
                                   "-c",
                                   "user.email=agentd@localhost",
                                   "-c",
                                   "core.quotepath=off"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, ctx.workspace->root(), o, ctx.cancel);
}

// The output of a git command that must succeed, or an error result naming it.
absl::StatusOr<std::string> GitOk(const ToolContext& ctx, std::vector<std::string> args,
                                  std::vector<std::string> env = {}) {
  std::string what = absl::StrJoin(args, " ");
  absl::StatusOr<ShellResult> r = Git(ctx, std::move(args), std::move(env));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("git ", what, " failed: ", absl::StripAsciiWhitespace(r->output)));
  }
  return r->output;
}

ToolResult Result(const absl::StatusOr<std::string>& r, const std::string& empty = "") {
  if (!r.ok()) return {std::string(r.status().message()), true};
  return {r->empty() ? empty : *r};
}

json Schema(json props = json::object(), json required = json::array()) {
  return {{"type", "object"}, {"properties", props}, {"required", required}};
}

class GitStatus final : public Tool {
 public:
  std::string name() const override { return "git.status"; }
  std::string description() const override { return "The branch and the changed files."; }
  json schema() const override { return Schema(); }
  bool side_effect() const override { return false; }
  ToolResult Run(const json&, const ToolContext& ctx) const override {
    return Result(GitOk(ctx, {"status", "--porcelain=v1", "--branch"}));
  }
};

class GitDiff final : public Tool {
 public:
  std::string name() const override { return "git.diff"; }
  std::string description() const override {
    return "The changes not yet committed (staged ones too with staged: true).";
  }
  json schema() const override { return Schema({{"staged", {{"type", "boolean"}}}}); }
  bool side_effect() const override { return false; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::vector<std::string> a = {"diff"};
    if (args.value("staged", false)) a.push_back("--cached");
    return Result(GitOk(ctx, a), "(no changes)");
  }
};

class GitCommit final : public Tool {
 public:
  std::string name() const override { return "git.commit"; }
  std::string description() const override {
    return "Commit every change in the workspace with a message; answers the commit id.";
  }
  json schema() const override {
    return Schema({{"message", {{"type", "string"}}}}, json::array({"message"}));
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string message = args["message"];
    if (absl::StripAsciiWhitespace(message).empty()) return {"the message must not be empty", true};
    if (auto s = GitOk(ctx, {"add", "-A"}); !s.ok()) return Result(s);
    absl::StatusOr<ShellResult> r = Git(ctx, {"commit", "-q", "-m", message});
    if (!r.ok()) return {std::string(r.status().message()), true};
    if (r->exit_code != 0) {
      return {absl::StrCat("nothing committed: ", absl::StripAsciiWhitespace(r->output)), true};
    }
    absl::StatusOr<std::string> head = GitOk(ctx, {"rev-parse", "HEAD"});
    return Result(head.ok() ? absl::StatusOr<std::string>(
                                  absl::StrCat("committed ", absl::StripAsciiWhitespace(*head)))
                            : head);
  }
};

class GitCheckpoint final : public Tool {
 public:
  std::string name() const override { return "git.checkpoint"; }
  std::string description() const override {
    return "Save the workspace as it is now (without committing) under a name, to roll back "
           "to later.";
  }
  json schema() const override {
    return Schema({{"name", {{"type", "string"}}}}, json::array({"name"}));
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string name = args["name"];
    if (name.empty() ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789-_.") != std::string::npos ||
        name.find("..") != std::string::npos) {
      return {"name: letters, digits, '-', '_' and '.' only", true};
    }
    // A private index: the agent's own staging area stays as it is.
    std::string index = absl::StrCat(".git/agentd-checkpoint-index-", getpid());
    std::vector<std::string> env = {"GIT_INDEX_FILE=" + index};
    auto cleanup = [&] { unlink(absl::StrCat(ctx.workspace->root(), "/", index).c_str()); };
    absl::StatusOr<std::string> tree;
    if (auto s = GitOk(ctx, {"add", "-A"}, env); !s.ok()) {
      cleanup();
      return Result(s);
    }
    tree = GitOk(ctx, {"write-tree"}, env);
    cleanup();
    if (!tree.ok()) return Result(tree);
    absl::StatusOr<std::string> commit =
        GitOk(ctx, {"commit-tree", std::string(absl::StripAsciiWhitespace(*tree)), "-m",
                    absl::StrCat("agentd checkpoint ", name)});
    if (!commit.ok()) return Result(commit);
    std::string id(absl::StripAsciiWhitespace(*commit));
    if (auto s = GitOk(ctx, {"update-ref", "refs/agentd/checkpoints/" + name, id}); !s.ok()) {
      return Result(s);
    }
    return {absl::StrCat("checkpoint ", name, " saved (", id, ")")};
  }
};

class GitRollback final : public Tool {
 public:
  std::string name() const override { return "git.rollback"; }
  std::string description() const override {
    return "Put the workspace's files back as they were at a checkpoint (files made since "
           "are removed; ignored files are left alone).";
  }
  json schema() const override {
    return Schema({{"name", {{"type", "string"}}}}, json::array({"name"}));
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string ref = "refs/agentd/checkpoints/" + args["name"].get<std::string>();
    absl::StatusOr<std::string> id = GitOk(ctx, {"rev-parse", "--verify", "--quiet", ref});
    if (!id.ok())
      return {absl::StrCat("no checkpoint named \"", args["name"].get<std::string>(), "\""), true};
    absl::StatusOr<std::string> then = GitOk(ctx, {"ls-tree", "-r", "--name-only", "-z", ref});
    absl::StatusOr<std::string> now =
        GitOk(ctx, {"ls-files", "-z", "--cached", "--others", "--exclude-standard"});
    if (!then.ok()) return Result(then);
    if (!now.ok()) return Result(now);
    std::set<std::string> keep;
    for (absl::string_view f : absl::StrSplit(*then, '\0', absl::SkipEmpty())) keep.emplace(f);
    int removed = 0;
    for (absl::string_view f : absl::StrSplit(*now, '\0', absl::SkipEmpty())) {
      if (keep.count(std::string(f)) == 0) {
        // Through the workspace's root descriptor, like every other tool.
        absl::StatusOr<int> dir =
            ctx.workspace->OpenAt(ParentOf(std::string(f)), O_RDONLY | O_DIRECTORY);
        if (dir.ok()) {
          std::string base(f.substr(
              f.find_last_of('/') == absl::string_view::npos ? 0 : f.find_last_of('/') + 1));
          if (unlinkat(*dir, base.c_str(), 0) == 0) ++removed;
          close(*dir);
        }
      }
    }
    std::string index = absl::StrCat(".git/agentd-rollback-index-", getpid());
    std::vector<std::string> env = {"GIT_INDEX_FILE=" + index};
    absl::StatusOr<std::string> read = GitOk(ctx, {"read-tree", ref}, env);
    absl::StatusOr<std::string> out =
        read.ok() ? GitOk(ctx, {"checkout-index", "-a", "-f"}, env) : read;
    unlink(absl::StrCat(ctx.workspace->root(), "/", index).c_str());
    if (!out.ok()) return Result(out);
    return {absl::StrCat("rolled back to ", args["name"].get<std::string>(), " (",
                         absl::StripAsciiWhitespace(*id), "); removed ", removed,
                         " file(s) made since")};
  }
};

}  // namespace

std::vector<std::unique_ptr<Tool>> NewGitTools() {
  std::vector<std::unique_ptr<Tool>> out;
  out.push_back(std::make_unique<GitStatus>());
  out.push_back(std::make_unique<GitDiff>());
  out.push_back(std::make_unique<GitCommit>());
  out.push_back(std::make_unique<GitCheckpoint>());
  out.push_back(std::make_unique<GitRollback>());
  return out;
}

}  // namespace agentd::tools
