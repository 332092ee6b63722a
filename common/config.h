// Configuration: the typed form of agentd.yaml, and the loader that produces it.
//
// A configuration is read in layers, each over the one before: the embedded default
// (templates/config/agentd.yaml, compiled in), then the file (`agentd --config FILE`),
// then its drop-ins, FILE.d/*.yaml in name order. A layer sets only what it names:
// mappings merge key by key (a provider, model or role named again is changed only in
// the keys given; one set to null is removed), lists and scalars replace. So a three-line
// file keeps every default role, and `agents: []` means no always-on agents.
//
// Each layer is parsed on its own: YAML is read, ${VAR} references expanded, every key
// checked against the schema (unknown keys are errors), durations and sizes converted.
// Checks that need the whole configuration (a model's provider exists, a role's model
// exists, pairs of settings agree) run after the last layer. Every problem is reported,
// not only the first, each as "FILE:LINE:COL: what is wrong (what was expected)" with
// 1-based line and column, one per line of the Status message; a check after the last
// layer is placed where the value it names was last set. YAML syntax errors are placed at
// their cause (a tab in the indentation, the bracket never closed) and quote the line.
//
// Config::origins remembers, for every setting a layer gave, where ("FILE:LINE:COL");
// `agentctl config view` prints it beside each value.
//
// Thread-safety: all functions are pure (they read the environment through the given
// lookup, and files); a Config is a value and may be copied and read from any thread.
#ifndef AGENTD_COMMON_CONFIG_H_
#define AGENTD_COMMON_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentd {

struct ServerConfig {
  std::string socket;                   // empty: resolved by paths.h DefaultSocketPath()
  std::string http = "127.0.0.1:7878";  // empty: off
  std::string grpc_tcp;                 // empty: off
  // A group whose members may use the admin socket (its directory 0750, the socket 0660,
  // both of this group), as docker's and libvirt's groups; empty: agentd's user alone.
  std::string socket_group;
  std::string tls_cert_file;  // both set: TLS on grpc_tcp
  std::string tls_key_file;
  absl::Duration shutdown_timeout = absl::Seconds(5);
  // Origins ("https://ui.example:8443") whose pages may call the HTTP listener's gRPC-web
  // bridge from another origin (CORS). The UI agentd serves itself needs none.
  std::vector<std::string> cors_origins;
  // Host names the HTTP listener answers to besides loopback addresses, `localhost` and
  // the address it is bound to (e.g. "agentd.lan" behind a proxy). A request with any
  // other Host header is refused: a page from another site that rebinds its DNS name to
  // 127.0.0.1 sends its own name. Names only, no ports, lower case.
  std::vector<std::string> http_hosts;
  // How long a web UI login (a session cookie) lasts.
  absl::Duration http_session_ttl = absl::Hours(12);

  bool operator==(const ServerConfig&) const = default;
};

struct UiConfig {
  std::string
      dir;  // the built UI (ui/dist); empty: installed share/agentd/ui, else the source tree's
  // The editor "Open in VS Code" runs, followed by the workspace path; empty: off.
  std::vector<std::string> editor = {"code"};

  bool operator==(const UiConfig&) const = default;
};

struct LoggingConfig {
  std::string format = "text";  // text | json
  std::string level = "info";   // spdlog level names

  bool operator==(const LoggingConfig&) const = default;
};

// OpenTelemetry traces (`telemetry:`). Off unless an endpoint is set here or in the
// standard OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT variables.
struct TelemetryConfig {
  // The collector's OTLP/HTTP base URL (spans go to <otlp_endpoint>/v1/traces), e.g.
  // "http://127.0.0.1:4318". Empty: OTEL_EXPORTER_OTLP_* decide.
  std::string otlp_endpoint;
  // Agents send a `traceparent` header with each model call, so a provider that traces
  // (a gateway, vLLM with tracing on) joins the goal's trace. Off: it tells the provider
  // which goal a call belongs to.
  bool traceparent_to_providers = false;

  bool operator==(const TelemetryConfig&) const = default;
};

struct ProviderConfig {
  std::string kind;  // openai | anthropic | ollama | replay
  std::string base_url;
  std::string api_key_env;  // name of the environment variable holding the key
  std::string cassette;     // replay: the cassette file
  // How long one call may take, phase by phase; a call past one is cut and retried whole.
  struct Timeouts {
    absl::Duration connect = absl::Seconds(10);
    absl::Duration first_byte = absl::Seconds(120);  // until the response starts
    absl::Duration idle = absl::Seconds(60);         // between two pieces of a stream
    absl::Duration total = absl::Minutes(10);

    bool operator==(const Timeouts&) const = default;
  } timeouts;

  bool operator==(const ProviderConfig&) const = default;
};

struct PriceConfig {
  double input_per_mtok = 0;
  double output_per_mtok = 0;

  bool operator==(const PriceConfig&) const = default;
};

struct ModelConfig {
  std::string provider;  // key into Config::providers
  std::string model;     // the provider's model name
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  PriceConfig price;

  bool operator==(const ModelConfig&) const = default;
};

// Resource limits of an agent's process (setrlimit(2), soft and hard alike); an unset
// one is inherited from agentd. systemd's LimitNOFILE=, LimitNPROC=, LimitAS=, …
struct LimitsConfig {
  std::optional<int64_t> nofile;      // open files (RLIMIT_NOFILE)
  std::optional<int64_t> nproc;       // processes of the user (RLIMIT_NPROC)
  std::optional<int64_t> memory;      // address space in bytes (RLIMIT_AS)
  std::optional<int64_t> core;        // core file size in bytes (RLIMIT_CORE)
  std::optional<int64_t> file_size;   // largest file it may write, bytes (RLIMIT_FSIZE)
  std::optional<absl::Duration> cpu;  // CPU time (RLIMIT_CPU, whole seconds)

  // These limits, with `over`'s set ones taking precedence.
  LimitsConfig OverriddenBy(const LimitsConfig& over) const;
  bool operator==(const LimitsConfig&) const = default;
};

struct RoleConfig {
  std::string model;  // key into Config::models; optional when `command` is set
  // The program an agent of this role runs, with its arguments; empty: agentd-agent.
  // Lets agentd supervise any program (a tool server, a test helper) like an agent.
  std::vector<std::string> command;
  // Whether the agent registers over AgentHost and so must do it within one heartbeat
  // ttl of its start (then heartbeat under its lease). Unset: yes for agentd-agent, no for
  // a `command` (a program that speaks AgentHost says `registers: true`).
  std::optional<bool> registers;
  std::vector<std::string> env;  // extra "NAME=value" for the agent's environment
  std::string prompt;            // path relative to the templates folder
  std::vector<std::string> tools;
  std::vector<std::string> knowledge;  // files or folders offered to the model
  int64_t max_instances = 1;
  // An agent of the role started on demand (not listed under agents:) is stopped after
  // this long without a task.
  absl::Duration idle_timeout = absl::Minutes(10);
  LimitsConfig limits;  // over supervision.limits
  // A task ends only through complete_task or fail_task: a turn answered in plain text is
  // sent back to the model as a nudge, and after max_nudges such turns in a row the task
  // fails (NO_RESULT). ends_on_text: a plain-text answer is the result instead.
  bool ends_on_text = false;
  int64_t max_nudges = 2;

  bool operator==(const RoleConfig&) const = default;
};

// An MCP tool server agents may use (`mcp_servers.<name>`): a program the agent starts
// in its tool sandbox and speaks to over stdio, or a Streamable HTTP endpoint. A role
// grants its tools with `mcp:<name>` (all of them) or `mcp:<name>/<tool>` (that one).
struct McpServerConfig {
  // stdio: the program (a name found through PATH, or a path) and its arguments. It runs
  // in the agent's workspace, inside the tool sandbox.
  std::string command;
  std::vector<std::string> args;
  // Streamable HTTP: the endpoint, http:// or https://.
  std::string url;
  // The server's environment variables (stdio) and the request headers (url), each
  // mapped to the name of agentd's environment variable that holds its value. Values are
  // secrets: they reach the agent as provider keys do, never through argv or config.
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> headers;
  // stdio: more of the filesystem the server sees, read-only (where its code lives).
  std::vector<std::string> read_only_paths;
  // stdio: the server's sandbox keeps the network. url: calls need no person's consent.
  bool network = false;
  // How long one tool call may take before it is cancelled.
  absl::Duration timeout = absl::Seconds(60);

  bool operator==(const McpServerConfig&) const = default;
};

struct AgentConfig {
  std::string id;
  std::string role;  // key into Config::roles

  bool operator==(const AgentConfig&) const = default;
};

struct SupervisionConfig {
  std::string restart = "on-failure";  // always | on-failure | never
  absl::Duration restart_sec = absl::Seconds(1);
  absl::Duration restart_max_sec = absl::Minutes(5);
  absl::Duration reset_after = absl::Minutes(10);
  int64_t crash_loop_max = 5;
  absl::Duration crash_loop_window = absl::Minutes(10);
  std::vector<int64_t> no_restart_exit_codes;
  // More than global_breaker_max failures of any agents within global_breaker_window (a
  // provider outage, say) hold every automatic restart for global_breaker_cooldown.
  // 0 turns the breaker off.
  int64_t global_breaker_max = 20;
  absl::Duration global_breaker_window = absl::Minutes(1);
  absl::Duration global_breaker_cooldown = absl::Minutes(5);
  absl::Duration stop_timeout = absl::Seconds(10);
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration heartbeat_ttl = absl::Seconds(20);
  LimitsConfig limits;  // for every agent; a role's own limits override them
  // Agents in user, mount and PID namespaces of their own, with agentd's state and admin
  // socket out of sight: auto (where it works, else without, said loudly) | required |
  // off.
  std::string isolation = "auto";

  bool operator==(const SupervisionConfig&) const = default;
};

struct LogsConfig {
  int64_t segment_bytes = int64_t{64} << 20;
  int64_t keep_segments = 8;
  int64_t ring_bytes = int64_t{4} << 20;

  bool operator==(const LogsConfig&) const = default;
};

// Task transcripts (what each agent was told, said and did), kept in agentd.db.
struct TranscriptsConfig {
  // Per goal, all its tasks' entries together: past it, the goal's oldest entries go.
  int64_t goal_bytes = int64_t{64} << 20;
  // Per entry: a longer one has its longest texts cut (a tool's output, a file's diff).
  int64_t entry_bytes = int64_t{256} << 10;

  bool operator==(const TranscriptsConfig&) const = default;
};

struct PolicyConfig {
  std::string plan_approval = "manual";  // manual | auto
  double budget_goal_usd = 5.0;
  int64_t budget_goal_tokens = 2000000;
  // What a goal does when a model call would pass a budget: "pause" (its tasks wait,
  // BUDGET_REACHED, until a person raises the budget) or "fail" (BUDGET_EXCEEDED).
  std::string budget_on_exhausted = "pause";
  // What a failed plan (a step out of attempts) leaves in the workspace: "keep" what its
  // steps did, or "rollback" to the checkpoint taken when it started.
  std::string on_plan_failure = "keep";
  std::vector<std::string> shell_allow;
  std::string shell_sandbox = "auto";  // auto | required | off
  // How long a consent request waits for a person before it expires (denied); 0: forever.
  absl::Duration consent_timeout = absl::Minutes(10);
  // A goal's checks: failed rounds its agent may fix before the goal fails, and how long
  // one check may run.
  int64_t max_check_rounds = 2;
  absl::Duration check_timeout = absl::Minutes(10);
  // A task whose provider fails past the agent's own retries waits `provider_backoff`
  // (doubling up to `provider_max_backoff`) and goes on; after `provider_retries` such
  // waits in a row it fails with PROVIDER_ERROR.
  int64_t provider_retries = 5;
  absl::Duration provider_backoff = absl::Seconds(10);
  absl::Duration provider_max_backoff = absl::Minutes(5);

  bool operator==(const PolicyConfig&) const = default;
};

struct Config {
  std::string source;               // the last layer read (the file, or a drop-in)
  std::vector<std::string> layers;  // every layer, first to last: "<embedded default>", …
  // Dotted path of each setting a layer gave ("roles.coder.tools", "agents[0].id") →
  // where, "FILE:LINE:COL". A setting absent here has its built-in default.
  std::map<std::string, std::string> origins;
  ServerConfig server;
  UiConfig ui;
  std::string state_dir;  // empty: resolved by paths.h DefaultStateDir()
  // Where goals without a folder of their own get one (<workspaces_dir>/<goal>); empty:
  // beside the state directory, <state_dir>-workspaces. Never inside the state directory,
  // which agents cannot see.
  std::string workspaces_dir;
  LoggingConfig logging;
  TelemetryConfig telemetry;
  std::map<std::string, ProviderConfig> providers;
  std::map<std::string, ModelConfig> models;
  std::map<std::string, RoleConfig> roles;
  std::map<std::string, McpServerConfig> mcp_servers;
  std::vector<AgentConfig> agents;
  SupervisionConfig supervision;
  LogsConfig logs;
  TranscriptsConfig transcripts;
  PolicyConfig policy;

  bool operator==(const Config&) const = default;
};

// Looks up an environment variable; nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// The process environment, as an EnvLookup.
EnvLookup ProcessEnv();

// One layer: its name in messages (a path) and its YAML text.
struct ConfigLayer {
  std::string name;
  std::string text;
};

// Reads `layers` in turn, each over the one before (see the top of this file), starting
// from the built-in defaults of the structs above.
// Errors: InvalidArgument listing every problem as "layer:line:col: message".
absl::StatusOr<Config> LoadConfigLayers(const std::vector<ConfigLayer>& layers,
                                        const EnvLookup& env = ProcessEnv());

// One layer alone, named `source_name` in error messages: what a file says, without the
// embedded default under it (tests, fuzzing).
absl::StatusOr<Config> LoadConfigText(absl::string_view text, absl::string_view source_name,
                                      const EnvLookup& env = ProcessEnv());

// The configuration agentd runs with: the embedded default, then `file` (none when
// empty), then `file`.d/*.yaml in name order (hidden files and other names are skipped).
// An unreadable file is InvalidArgument (or NotFound) naming the path and the system's
// reason; a missing drop-in directory is no error.
absl::StatusOr<Config> LoadLayeredConfig(const std::string& file,
                                         const EnvLookup& env = ProcessEnv());

// The drop-ins of `file`, sorted by name; none when FILE.d does not exist.
absl::StatusOr<std::vector<std::string>> ConfigDropIns(const std::string& file);

// The configuration compiled into the binary (templates/config/agentd.yaml).
absl::StatusOr<Config> LoadDefaultConfig(const EnvLookup& env = ProcessEnv());

// Where the value at dotted `path` came from, per `origins` (the path's own entry, else
// its nearest enclosing one's), or "built-in default".
std::string OriginOf(const std::map<std::string, std::string>& origins, absl::string_view path);

// The text of the embedded default configuration.
absl::string_view EmbeddedDefaultConfigText();

// Tool names a role may list under `tools:`, besides the MCP grants (McpGrant).
const std::vector<std::string>& KnownTools();

// A role's grant of MCP tools: `mcp:<server>` (tool empty: every tool the server lists)
// or `mcp:<server>/<tool>`.
struct McpGrant {
  std::string server;
  std::string tool;
};
// The grant `entry` names; nullopt when it does not start with "mcp:". A malformed one
// (no server name, a bad tool name) is an error saying what is expected.
std::optional<absl::StatusOr<McpGrant>> ParseMcpGrant(absl::string_view entry);

}  // namespace agentd

#endif  // AGENTD_COMMON_CONFIG_H_
