#include "manager/core/doctor.h"

#include <sys/statvfs.h>

#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agents/llm/model_list.h"
#include "common/values.h"

namespace agentd {
namespace {

void Add(v1::DiagnoseResponse* r, std::string name, v1::DiagnosisStatus status, std::string detail,
         std::string remedy = "") {
  v1::Diagnosis* d = r->add_checks();
  d->set_name(std::move(name));
  d->set_status(status);
  d->set_detail(std::move(detail));
  d->set_remedy(std::move(remedy));
}

// Ollama's own port: a provider there is almost surely Ollama, whose remedies differ.
bool LooksLikeOllama(const ProviderConfig& p) {
  return p.kind == "ollama" || absl::StrContains(p.base_url, ":11434");
}

struct ProviderResult {
  bool asked = false;  // a listing was requested
  absl::StatusOr<std::vector<std::string>> models = std::vector<std::string>();
};

std::string Sample(const std::vector<std::string>& served) {
  std::vector<std::string> some(served.begin(),
                                served.begin() + std::min<size_t>(served.size(), 8));
  return absl::StrCat(absl::StrJoin(some, ", "), served.size() > some.size() ? ", …" : "");
}

}  // namespace

v1::DiagnoseResponse Diagnose(const DoctorInputs& in, llm::Transport& transport) {
  const Config& c = in.config;
  v1::DiagnoseResponse r;

  // The models and providers a role uses: only those can keep a goal from running.
  std::map<std::string, std::vector<std::string>> model_roles;  // model → roles
  for (const auto& [name, role] : c.roles) {
    if (!role.model.empty() && role.command.empty()) model_roles[role.model].push_back(name);
  }
  std::set<std::string> used_providers;
  for (const auto& [model, roles] : model_roles) {
    if (auto it = c.models.find(model); it != c.models.end()) {
      used_providers.insert(it->second.provider);
    }
  }

  // Keys first (no network), then every used provider asked at once.
  std::map<std::string, std::string> keys;
  std::map<std::string, ProviderResult> results;
  for (const std::string& name : used_providers) {
    auto it = c.providers.find(name);
    if (it == c.providers.end()) continue;
    const ProviderConfig& p = it->second;
    if (!p.api_key_env.empty()) {
      std::optional<std::string> key = in.env(p.api_key_env);
      if (!key || key->empty()) continue;  // reported below; not worth a refused call
      keys[name] = *key;
    }
    if (p.kind == "replay") continue;
    results[name].asked = true;
  }
  {
    std::vector<std::thread> threads;
    for (auto& [name, res] : results) {
      const ProviderConfig& p = c.providers.at(name);
      threads.emplace_back([&transport, &p, &res, key = keys[name], timeout = in.timeout] {
        res.models = llm::ListModels(transport, p.kind, p.base_url, key, timeout);
      });
    }
    for (std::thread& t : threads) t.join();
  }

  for (const auto& [name, p] : c.providers) {
    const std::string check = "provider " + name;
    if (used_providers.count(name) == 0) {
      Add(&r, check, v1::DIAGNOSIS_STATUS_OK, "no role uses it; not checked");
      continue;
    }
    if (!p.api_key_env.empty() && keys.count(name) == 0) {
      Add(&r, check, v1::DIAGNOSIS_STATUS_FAILED,
          absl::StrCat(p.api_key_env, " is not set in agentd's environment"),
          absl::StrCat("set ", p.api_key_env,
                       " where agentd starts: export it before `agentd`, or put "
                       "\"",
                       p.api_key_env,
                       "=…\" in ~/.config/agentd/env (user service) or "
                       "/etc/agentd/env (system service) and restart agentd"));
      continue;
    }
    if (p.kind == "replay") {
      Add(&r, check, v1::DIAGNOSIS_STATUS_OK,
          absl::StrCat("replays the cassette ", p.cassette, " (no network)"));
      continue;
    }
    const ProviderResult& res = results[name];
    const std::string url = llm::ModelListRequest(p.kind, p.base_url, "").url;
    if (res.models.ok()) {
      Add(&r, check, v1::DIAGNOSIS_STATUS_OK,
          absl::StrCat(url, " answers, serving ", res.models->size(), " models"));
      continue;
    }
    const absl::Status& s = res.models.status();
    switch (s.code()) {
      case absl::StatusCode::kUnauthenticated:
      case absl::StatusCode::kPermissionDenied:
        Add(&r, check, v1::DIAGNOSIS_STATUS_FAILED,
            absl::StrCat("the key was refused: ", s.message()),
            p.api_key_env.empty() ? absl::StrCat("the server wants a key: set providers.", name,
                                                 ".api_key_env to the variable that holds it")
                                  : absl::StrCat("check the key in ", p.api_key_env,
                                                 " (a new one from the "
                                                 "provider's console), then restart agentd"));
        break;
      case absl::StatusCode::kNotFound:
      case absl::StatusCode::kInvalidArgument:
        // It answers, but lists no models the way its kind does: calls may still work.
        Add(&r, check, v1::DIAGNOSIS_STATUS_WARNING,
            absl::StrCat("reachable, but its models could not be listed: ", s.message()),
            absl::StrCat("check providers.", name, ".base_url (", p.base_url, ") and kind (",
                         p.kind, ")"));
        break;
      default:
        Add(&r, check, v1::DIAGNOSIS_STATUS_FAILED, absl::StrCat("not reachable: ", s.message()),
            LooksLikeOllama(p)
                ? absl::StrCat("start Ollama (`ollama serve`, or `systemctl start ollama`), "
                               "or point providers.",
                               name, ".base_url at where it runs")
                : absl::StrCat("check that the server runs and providers.", name, ".base_url (",
                               p.base_url, ") is its address"));
    }
  }

  for (const auto& [model, roles] : model_roles) {
    const std::string check = "model " + model;
    auto it = c.models.find(model);
    if (it == c.models.end()) continue;  // the config's own checks refuse this
    const ModelConfig& m = it->second;
    auto res = results.find(m.provider);
    std::string used_by = absl::StrCat("used by ", absl::StrJoin(roles, ", "));
    if (res == results.end() || !res->second.models.ok()) {
      Add(&r, check, v1::DIAGNOSIS_STATUS_WARNING,
          absl::StrCat("\"", m.model, "\" on provider ", m.provider, " (", used_by,
                       "): not checked, the provider's models could not be listed"));
      continue;
    }
    const std::vector<std::string>& served = *res->second.models;
    if (llm::ServesModel(served, m.model)) {
      Add(&r, check, v1::DIAGNOSIS_STATUS_OK,
          absl::StrCat("\"", m.model, "\" is served by ", m.provider, " (", used_by, ")"));
      continue;
    }
    const ProviderConfig& p = c.providers.at(m.provider);
    Add(&r, check, v1::DIAGNOSIS_STATUS_FAILED,
        absl::StrCat("\"", m.model, "\" is not served by provider ", m.provider, " (", used_by, ")",
                     served.empty() ? "; it serves none" : "; it serves " + Sample(served)),
        LooksLikeOllama(p)
            ? absl::StrCat("ollama pull ", m.model, "   (or set models.", model,
                           ".model to a model it has)")
            : absl::StrCat("set models.", model, ".model to a model the provider serves"));
  }

  // The shell sandbox (shell.run, tests.run, git.*, the goals' checks) and agent isolation
  // share their policy's words: off | auto (where it works) | required.
  auto confinement = [&r](const std::string& name, const std::string& policy,
                          const std::string& setting, const std::string& problem,
                          const std::string& off_risk, const std::string& works,
                          const std::string& broken_effect, const std::string& remedy) {
    if (policy == "off") {
      Add(&r, name, v1::DIAGNOSIS_STATUS_WARNING, absl::StrCat(setting, " is off: ", off_risk),
          absl::StrCat("set ", setting, ": auto"));
    } else if (problem.empty()) {
      Add(&r, name, v1::DIAGNOSIS_STATUS_OK, works);
    } else {
      const bool required = policy == "required";
      Add(&r, name, required ? v1::DIAGNOSIS_STATUS_FAILED : v1::DIAGNOSIS_STATUS_WARNING,
          absl::StrCat(problem, required ? absl::StrCat(" (", setting, ": required)") : "", "; ",
                       broken_effect),
          remedy);
    }
  };
  confinement(
      "sandbox", c.policy.shell_sandbox, "policy.shell.sandbox",
      in.sandbox_broken.empty() ? "" : "bubblewrap does not work here: " + in.sandbox_broken,
      "agents' commands run without bubblewrap",
      "bubblewrap works: agents' commands run without network, the system read-only",
      "goals' checks do not run",
      "install bubblewrap (apt install bubblewrap) and allow unprivileged user "
      "namespaces (sysctl kernel.unprivileged_userns_clone=1), or run agentd where "
      "they work");
  confinement(
      "isolation", c.supervision.isolation, "supervision.isolation",
      in.isolation_problem.empty() ? "" : "agents cannot be isolated: " + in.isolation_problem,
      "agents could read agentd's state directory",
      "agents run in user, mount and PID namespaces of their own",
      c.supervision.isolation == "required" ? "no agent starts" : "agents run without namespaces",
      "allow unprivileged user namespaces, or run agentd as its system service");

  if (!in.cgroup_base.empty()) {
    Add(&r, "cgroups", v1::DIAGNOSIS_STATUS_OK,
        absl::StrCat("each agent runs in a cgroup of its own under ", in.cgroup_base));
  } else {
    Add(&r, "cgroups", v1::DIAGNOSIS_STATUS_WARNING,
        absl::StrCat("no cgroups (", in.no_cgroups_reason,
                     "): process groups hold agents together, and a process that leaves "
                     "its group outlives its agent"),
        "run agentd as a systemd service (its unit has Delegate=yes)");
  }

  for (const auto& [name, address] : in.listeners) {
    Add(&r, "listener " + name, v1::DIAGNOSIS_STATUS_OK, absl::StrCat("listening on ", address));
  }

  struct statvfs fs {};
  if (statvfs(c.state_dir.c_str(), &fs) == 0) {
    int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
    bool low = free_bytes < (int64_t{1} << 30);
    Add(&r, "state directory", low ? v1::DIAGNOSIS_STATUS_WARNING : v1::DIAGNOSIS_STATUS_OK,
        absl::StrCat(c.state_dir, ": ", FormatByteSize(free_bytes), " free"),
        low ? "free disk space: logs, sessions and the database grow with the work" : "");
  }

  bool can_run = true;
  for (const v1::Diagnosis& d : r.checks()) {
    if (d.status() == v1::DIAGNOSIS_STATUS_FAILED) can_run = false;
  }
  r.set_goal_can_run(can_run);
  return r;
}

}  // namespace agentd
