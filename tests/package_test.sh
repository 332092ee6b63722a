#!/usr/bin/env bash
# Builds agentd's .deb from a build tree (cpack) and checks it as a packager would: its
# files, conffile, maintainer scripts and dependencies; lintian finds no error (where
# lintian is installed); unpacked, the binaries run and the service points at them and at
# the conffile; installed with dpkg into a fresh root, agentd starts from there and the
# package is removed again.
set -euo pipefail
build=$1
work=$(mktemp -d)
agentd_pid=""
trap '[ -n "$agentd_pid" ] && kill -KILL "$agentd_pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "package_test: $*" >&2; exit 1; }
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/out/agentd_*.deb)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
for f in /usr/bin/agentd /usr/bin/agentctl /usr/bin/agentd-agent /usr/bin/agentd-init \
         /etc/agentd/agentd.yaml /usr/lib/systemd/system/agentd.service \
         /usr/lib/systemd/user/agentd.service /usr/lib/sysusers.d/agentd.conf \
         /usr/lib/tmpfiles.d/agentd.conf /usr/share/agentd/ui/index.html \
         /usr/share/agentd/templates/config/agentd.yaml /usr/share/man/man1/agentctl.1.gz \
         /usr/share/man/man8/agentd.8.gz /usr/share/bash-completion/completions/agentctl \
         /usr/share/zsh/vendor-completions/_agentctl /usr/share/doc/agentd/copyright \
         /usr/share/doc/agentd/changelog.Debian.gz; do
  grep -qx "$f" "$work/files" || fail "the package lacks $f"
done
# Nothing from the build tree's tests or benchmarks.
! grep -v '^/usr/share/agentd/templates/' "$work/files" | grep -E 'test|bench|fakellm' >/dev/null || fail "test files in the package"
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/agentd/agentd.yaml "$work/control/conffiles" || fail "agentd.yaml is not a conffile"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no $s"
  sh -n "$work/control/$s" || fail "$s does not parse"
done
grep -q 'systemd-sysusers' "$work/control/postinst" || fail "postinst does not make the agentd user"
# The shared libraries it loads (gRPC, protobuf and Abseil are linked in by release
# builds: cmake/StaticDeps.cmake); libcurl is opened at the first HTTP call.
for lib in libcurl libsqlite3 libspdlog; do
  grep -Eq "^Depends:.*$lib" "$work/control/control" || fail "Depends lacks $lib"
done
# Built so, none of its programs loads the libraries linked in.
if grep -q '^AGENTD_STATIC_DEPS_IN_USE:INTERNAL=ON' "$build/CMakeCache.txt"; then
  dpkg-deb -x "$deb" "$work/tree"
  for bin in usr/bin/agentd usr/bin/agentctl usr/bin/agentd-agent; do
    [ -f "$work/tree/$bin" ] || fail "the package lacks /$bin"
    ! readelf -d "$work/tree/$bin" | grep -E 'NEEDED.*lib(grpc|absl|protobuf|upb|gpr)' >/dev/null ||
      fail "$bin loads a library meant to be linked in"
  done
fi
# An agent loads at start only what every agent needs: libcurl (and its thirty
# dependencies) waits for the first model call, and libsystemd is agentd's alone.
[ -n "$(ls "$work/tree" 2>/dev/null)" ] || dpkg-deb -x "$deb" "$work/tree"
[ -f "$work/tree/usr/bin/agentd-agent" ] || fail "the package lacks /usr/bin/agentd-agent"
! readelf -d "$work/tree/usr/bin/agentd-agent" | grep -E 'NEEDED.*lib(curl|systemd)' >/dev/null ||
  fail "agentd-agent loads libcurl or libsystemd at start"
# Nettle (SHA-256 for the audit chain) is agentd's alone: every agent and agentctl start
# would pay for loading it.
for bin in usr/bin/agentd-agent usr/bin/agentctl; do
  ! readelf -d "$work/tree/$bin" | grep -E 'NEEDED.*libnettle' >/dev/null ||
    fail "$bin loads libnettle"
done
readelf -d "$work/tree/usr/bin/agentd" | grep -qE 'NEEDED.*libnettle' ||
  fail "agentd does not load libnettle: where does its SHA-256 come from?"
if command -v lintian >/dev/null; then
  lintian --no-tag-display-limit "$deb" >"$work/lintian" 2>&1 || true
  if grep -q '^E:' "$work/lintian"; then grep '^E:' "$work/lintian" >&2; fail "lintian errors"; fi
fi
# No GUI in the daemon's package: the desktop window is a package of its own.
! grep -q '^/usr/bin/agentd-desktop$' "$work/files" || fail "agentd's package holds agentd-desktop"
! grep -Eq '^Depends:.*(gtk|webkit)' "$work/control/control" || fail "agentd depends on GUI libraries"
# agentd-desktop's package, when the build made the window (GTK and WebKitGTK found).
if grep -q '^AGENTD_HAVE_DESKTOP:INTERNAL=ON' "$build/CMakeCache.txt"; then
  desk=$(ls "$work"/out/agentd-desktop_*.deb 2>/dev/null) || fail "no agentd-desktop package"
  dpkg-deb -c "$desk" | awk '{print $6}' | sed 's|^\./|/|' >"$work/desktop-files"
  for f in /usr/bin/agentd-desktop /usr/share/applications/agentd.Desktop.desktop \
           /usr/share/icons/hicolor/scalable/apps/agentd.svg /usr/share/man/man1/agentd-desktop.1.gz \
           /usr/share/doc/agentd-desktop/copyright; do
    grep -qx "$f" "$work/desktop-files" || fail "agentd-desktop's package lacks $f"
  done
  dpkg-deb -f "$desk" Depends | grep -q "agentd (= " || fail "agentd-desktop does not depend on agentd"
  dpkg-deb -f "$desk" Depends | grep -q "libwebkit2gtk-4.1" || fail "agentd-desktop's Depends lacks WebKitGTK"
  [ -z "$(dpkg-deb -e "$desk" "$work/desktop-control" && ls "$work/desktop-control" | grep -Ev '^(control|md5sums)$')" ] ||
    fail "agentd-desktop carries maintainer scripts or conffiles (they are agentd's)"
  if command -v lintian >/dev/null; then
    lintian --no-tag-display-limit "$desk" >"$work/lintian-desktop" 2>&1 || true
    if grep -q '^E:' "$work/lintian-desktop"; then grep '^E:' "$work/lintian-desktop" >&2; fail "lintian errors (agentd-desktop)"; fi
  fi
  if command -v desktop-file-validate >/dev/null; then
    dpkg-deb -x "$desk" "$work/desktop-tree"
    desktop-file-validate "$work/desktop-tree/usr/share/applications/agentd.Desktop.desktop" ||
      fail "agentd.Desktop.desktop does not validate"
  fi
fi
# Unpacked into a fresh root: it runs, and the service names what the package installs.
root="$work/root"
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/agentd" --version | grep '^agentd ' >/dev/null || fail "agentd from the package does not run"
"$root/usr/bin/agentctl" config validate "$root/etc/agentd/agentd.yaml" >/dev/null \
  || fail "the packaged config does not validate"
grep -q '^  socket_group: agentd' "$root/etc/agentd/agentd.yaml" \
  || fail "the packaged config does not let group agentd use the socket"
grep -q '^ExecStart=/usr/bin/agentd --config /etc/agentd/agentd.yaml ' \
  "$root/usr/lib/systemd/system/agentd.service" || fail "the system unit's ExecStart"
zcat "$root/usr/share/man/man1/agentctl.1.gz" | grep 'agentctl logs' >/dev/null || fail "agentctl(1)"

# Installed with dpkg into a fresh root (its maintainer scripts run for that root, leaving
# this machine alone), started from there, and removed again. dpkg wants root for it.
if [ "$(id -u)" -ne 0 ]; then
  echo "package_test: ok ($(basename "$deb"); not installed into a fresh root: dpkg needs root)"
  exit 0
fi
fresh="$work/fresh"
mkdir -p "$fresh/var/lib/dpkg/info" "$fresh/var/lib/dpkg/updates" "$fresh/etc"
touch "$fresh/var/lib/dpkg/status"
passwd_before=$(md5sum /etc/passwd)
dpkg --root="$fresh" --force-script-chrootless --force-depends --log=/dev/null \
  -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i into a fresh root"; }
[ "$(md5sum /etc/passwd)" = "$passwd_before" ] || fail "installing into a root changed this machine's users"
dpkg --root="$fresh" -s agentd 2>/dev/null | grep '^Status: install ok installed' >/dev/null \
  || fail "dpkg does not list agentd as installed in the fresh root"
if command -v systemd-sysusers >/dev/null; then
  grep -q '^agentd:' "$fresh/etc/passwd" || fail "postinst made no agentd user in the root"
fi
# Started from the root with its own config; a drop-in takes back the socket group, which
# only the root's /etc/group has.
mkdir -p "$fresh/etc/agentd/agentd.yaml.d"
printf 'server: {socket_group: "", http: ""}\nagents: []\n' >"$fresh/etc/agentd/agentd.yaml.d/50-here.yaml"
sock="$work/run/agentd.sock"
"$fresh/usr/bin/agentd" --config "$fresh/etc/agentd/agentd.yaml" --state-dir "$work/state" \
  --socket "$sock" 2>"$work/agentd.err" &
agentd_pid=$!
served=0
for _ in $(seq 200); do
  if "$fresh/usr/bin/agentctl" --socket "$sock" status >"$work/status" 2>&1; then served=1; break; fi
  kill -0 "$agentd_pid" 2>/dev/null || break
  sleep 0.05
done
((served)) || { cat "$work/agentd.err" >&2; fail "agentd installed in the root did not serve"; }
grep -q 'serving' "$work/status" || fail "status: $(cat "$work/status")"
"$fresh/usr/bin/agentctl" --socket "$sock" config view >"$work/view" 2>&1 || true
grep -q "50-here.yaml" "$work/view" \
  || fail "the installed agentd did not read its drop-in: $(head -5 "$work/view")"
kill -TERM "$agentd_pid"
wait "$agentd_pid" || fail "agentd from the root did not exit 0 on SIGTERM"
agentd_pid=""
dpkg --root="$fresh" --force-script-chrootless --log=/dev/null -r agentd >>"$work/dpkg.log" 2>&1 \
  || { cat "$work/dpkg.log" >&2; fail "dpkg -r from the fresh root"; }
[ ! -e "$fresh/usr/bin/agentd" ] || fail "dpkg -r left the binary"
[ -e "$fresh/etc/agentd/agentd.yaml" ] || fail "dpkg -r (not purge) removed the conffile"
echo "package_test: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"
