#!/usr/bin/env bash
# The README's five-minute tour, run as written so that it cannot go stale: agentd with the
# demo team (dev/demo: every role's model played by dev/fakellm), then every `$ agentctl …`
# line of the tour's code blocks, in order, through bash, in a scratch directory with a
# scratch HOME (for `~`), one shell for all of them (a line may set a variable a later
# one uses). A line must exit 0; one that follows (-f, -w) must still be following after
# two seconds. The first line that does neither fails the test, with its output.
#   tests/readme_tour_test.sh BUILD_DIR
set -euo pipefail
# Read-only: the tour's lines run in this shell and must not change what cleanup removes.
readonly build=$(cd "$1" && pwd)
readonly root=$(cd "$(dirname "$0")/.." && pwd)
readonly scratch=$(mktemp -d /tmp/agentd-tour.XXXXXX)
fakellm_pid="" agentd_pid=""
cleanup() {
  [ -n "$agentd_pid" ] && kill -TERM "$agentd_pid" 2>/dev/null && wait "$agentd_pid" 2>/dev/null
  [ -n "$fakellm_pid" ] && kill -TERM "$fakellm_pid" 2>/dev/null && wait "$fakellm_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
  echo "readme tour: $*" >&2
  echo "--- agentd's log:" >&2
  tail -40 "$scratch/agentd.err" >&2 || true
  exit 1
}

# Made before the background job opens them: the poll below may read them first.
: >"$scratch/fakellm.out"
node "$root/dev/fakellm/fakellm.mjs" --scenario "$root/dev/demo/scenario.yaml" \
  >"$scratch/fakellm.out" 2>"$scratch/fakellm.err" &
fakellm_pid=$!
url=""
for _ in $(seq 400); do
  url=$(sed -n 's/^fakellm listening on //p' "$scratch/fakellm.out")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || fail "dev/fakellm did not start: $(cat "$scratch/fakellm.err")"

export AGENTD_DEMO_URL=$url
export AGENTD_SOCKET=$scratch/run/agentd.sock
"$build/manager/agentd" --config "$root/dev/demo/agentd.yaml" --state-dir "$scratch/state" \
  --socket "$AGENTD_SOCKET" --http "" 2>"$scratch/agentd.err" &
agentd_pid=$!
export PATH=$build/manager/ctl:$PATH
for _ in $(seq 400); do
  agentctl status >/dev/null 2>&1 && break
  kill -0 "$agentd_pid" 2>/dev/null || fail "agentd exited at start"
  sleep 0.05
done
agentctl status >/dev/null || fail "agentd did not come up"

export HOME=$scratch/home
mkdir -p "$HOME/src"
cd "$scratch"

# The tour: from its heading to the next one, the lines of code blocks that start "$ ".
mapfile -t lines < <(awk '
  /^## A five-minute tour/ { tour = 1; next }
  /^## / { tour = 0 }
  tour && /^```/ { block = !block; next }
  tour && block && /^\$ / { print substr($0, 3) }
' "$root/README.md")
((${#lines[@]} >= 30)) || fail "found only ${#lines[@]} tour lines in README.md"

ran=0
set +e
for line in "${lines[@]}"; do
  # A comment is two or more spaces and a "#"; a "#" inside the command has none before it.
  cmd=$(sed -E 's/[[:space:]]{2,}#.*$//' <<<"$line")
  if grep -qE '(^|[[:space:]])-(f|w)([[:space:]]|$)' <<<"$cmd"; then
    timeout 2 bash -c "$cmd" >"$scratch/out" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] || fail "\`$cmd\` should follow until interrupted, but exited $rc:
$(cat "$scratch/out")"
  else
    # In this shell, so that variables carry over, but in a subshell's errexit/nounset
    # terms: a failing line is reported here, not by bash's own exit. (ctest's timeout
    # bounds the whole run; agentctl's own --timeout each call.)
    set +u
    eval "$cmd" >"$scratch/out" 2>&1 </dev/null
    rc=$?
    set -u
    [ "$rc" -eq 0 ] || fail "\`$cmd\` exited $rc:
$(cat "$scratch/out")"
  fi
  ran=$((ran + 1))
done
echo "readme tour: all $ran lines ran as written"
