#!/usr/bin/env bash
# Builds agentd's .deb from a build tree (cpack) and checks it as a packager would: its
# files, conffile, maintainer scripts and dependencies; lintian finds no error (where
# lintian is installed); and, unpacked into a fresh root, the binaries run and the
# service points at them and at the conffile.
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
! grep -v '^/usr/share/agentd/templates/' "$work/files" | grep -Eq 'test|bench|fakellm' || fail "test files in the package"
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/agentd/agentd.yaml "$work/control/conffiles" || fail "agentd.yaml is not a conffile"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no $s"
  sh -n "$work/control/$s" || fail "$s does not parse"
done
grep -q 'systemd-sysusers' "$work/control/postinst" || fail "postinst does not make the agentd user"
grep -Eq '^Depends:.*libgrpc\+\+' "$work/control/control" || fail "Depends lacks the libraries"
if command -v lintian >/dev/null; then
  lintian --no-tag-display-limit "$deb" >"$work/lintian" 2>&1 || true
  if grep -q '^E:' "$work/lintian"; then grep '^E:' "$work/lintian" >&2; fail "lintian errors"; fi
fi
# Unpacked into a fresh root: it runs, and the service names what the package installs.
root="$work/root"
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/agentd" --version | grep -q '^agentd ' || fail "agentd from the package does not run"
"$root/usr/bin/agentctl" config validate "$root/etc/agentd/agentd.yaml" >/dev/null \
  || fail "the packaged config does not validate"
grep -q '^  socket_group: agentd' "$root/etc/agentd/agentd.yaml" \
  || fail "the packaged config does not let group agentd use the socket"
grep -q '^RuntimeDirectoryMode=0750' "$root/usr/lib/systemd/system/agentd.service" \
  || fail "the system unit's socket directory is not open to its group"
grep -q '^ExecStart=/usr/bin/agentd --config /etc/agentd/agentd.yaml ' \
  "$root/usr/lib/systemd/system/agentd.service" || fail "the system unit's ExecStart"
zcat "$root/usr/share/man/man1/agentctl.1.gz" | grep -q 'agentctl logs' || fail "agentctl(1)"
echo "package_test: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"
