#!/usr/bin/env bash
# Installs a build tree into a temporary prefix and checks that every file is where the
# service definitions expect it, and that the installed binaries run.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
fail() { echo "install_test: $*" >&2; exit 1; }
for f in bin/agentd bin/agentctl bin/agentd-agent bin/agentd-init lib/systemd/system/agentd.service lib/systemd/user/agentd.service \
         share/agentd/templates/config/agentd.yaml \
         share/agentd/ui/index.html share/man/man1/agentctl.1.gz share/man/man8/agentd.8.gz \
         share/bash-completion/completions/agentctl share/zsh/vendor-completions/_agentctl; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
# The units were configured for the build's prefix; check they name an agentd binary
# in its bin directory and the notify/watchdog contract.
for unit in "$prefix/lib/systemd/system/agentd.service" "$prefix/lib/systemd/user/agentd.service"; do
  grep -Eq '^ExecStart=/.*/bin/agentd( |$)' "$unit" || fail "$unit: ExecStart"
  grep -q '^Type=notify$' "$unit" || fail "$unit: Type=notify"
  grep -q '^WatchdogSec=' "$unit" || fail "$unit: WatchdogSec"
  grep -q '^Restart=on-failure$' "$unit" || fail "$unit: Restart"
done
"$prefix/bin/agentd" --version | grep '^agentd ' >/dev/null || fail "installed agentd does not run"
# The units as systemd sees them: valid, and the system unit hardened to an exposure of
# 5.0 or less (systemd-analyze security). ExecStart is pointed at the installed binary.
if command -v systemd-analyze >/dev/null; then
  units=$(mktemp -d)
  for unit in system/agentd.service user/agentd.service; do
    sed "s|^ExecStart=[^ ]*/bin/agentd|ExecStart=$prefix/bin/agentd|" \
      "$prefix/lib/systemd/$unit" >"$units/agentd-${unit%%/*}.service"
  done
  MANPATH="$prefix/share/man" systemd-analyze verify "$units/agentd-system.service" \
    "$units/agentd-user.service" >"$units/verify" 2>&1 || { cat "$units/verify" >&2; fail "systemd-analyze verify"; }
  exposure=$(systemd-analyze security --offline=yes "$units/agentd-system.service" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$exposure" ] || fail "systemd-analyze security printed no exposure"
  awk -v e="$exposure" 'BEGIN { exit !(e <= 5.0) }' || fail "system unit exposure $exposure > 5.0"
  rm -rf "$units"
fi
# The man pages hold every command (they are made from `agentctl help --all`).
zgrep -q '^\.TH AGENTCTL "1"' "$prefix/share/man/man1/agentctl.1.gz" || fail "agentctl.1 is not a man page"
zgrep -q 'agentctl consent deny' "$prefix/share/man/man1/agentctl.1.gz" || fail "agentctl.1 lacks the commands"
zgrep -q '^\.TH AGENTD "8"' "$prefix/share/man/man8/agentd.8.gz" || fail "agentd.8 is not a man page"
grep -q 'complete -F _agentctl agentctl' "$prefix/share/bash-completion/completions/agentctl" \
  || fail "bash completion"
"$prefix/bin/agentctl" config validate "$prefix/share/agentd/templates/config/agentd.yaml" >/dev/null \
  || fail "installed default config does not validate"
# The installed agentd serves the installed UI (not the source tree's).
echo "<!-- installed -->" >>"$prefix/share/agentd/ui/index.html"
run=$(mktemp -d)
"$prefix/bin/agentd" --state-dir "$run/state" --socket "$run/agentd.sock" --http 127.0.0.1:0 \
  2>"$run/agentd.err" &
agentd_pid=$!
trap 'kill "$agentd_pid" 2>/dev/null; wait "$agentd_pid" 2>/dev/null; rm -rf "$prefix" "$run"' EXIT
http=""
for _ in $(seq 200); do  # up to 10 s for it to serve
  http=$("$prefix/bin/agentctl" --socket "$run/agentd.sock" -o json status 2>/dev/null |
         sed -n 's/.*"http": "\([^"]*\)".*/\1/p') && [ -n "$http" ] && break
  sleep 0.05
done
[ -n "$http" ] || fail "installed agentd did not serve: $(cat "$run/agentd.err")"
curl -sf "http://$http/" | grep "<!-- installed -->" >/dev/null || fail "installed agentd does not serve share/agentd/ui"
echo "install_test: ok"
