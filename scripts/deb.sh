#!/bin/bash
# deb.sh — build a Debian package of inopipe with dpkg-deb (run by `make
# deb`): the binaries (static), man pages, systemd units, completions, an
# example config /etc/inopipe/example.env and the spool directory. The
# version comes from the newest git tag (v0.x.y); between tags it is
# 0.x.y+N.gSHA, with no tag 0.0.0+gSHA. Checked with lintian when it is
# installed (make deb installs it on Debian). Writes inopipe_VERSION_ARCH.deb
# into the current directory and prints its name.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

desc=$(git describe --tags --match 'v[0-9]*' --always 2>/dev/null || echo unknown)
case $desc in
v[0-9]*-*-g*) # v0.2.0-5-gabc123
	base=${desc%%-*} rest=${desc#*-}
	version="${base#v}+${rest%%-*}.${rest#*-}" ;;
v[0-9]*) version=${desc#v} ;;
*) version="0.0.0+g$desc" ;;
esac
arch=$(dpkg --print-architecture)
stage=$(mktemp -d /tmp/inopipe-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root=$stage/inopipe_${version}_$arch

# As Debian builds Go programs: position-independent, stripped, linked
# against libc (hardening: PIE, RELRO).
make -s build VERSION="$version" GO="$GO" GOFLAGS="-buildmode=pie" LDEXTRA="-s -w -linkmode=external" >/dev/null
make -s install PREFIX=/usr DESTDIR="$root" VERSION="$version" GO="$GO" GOFLAGS="-buildmode=pie" LDEXTRA="-s -w -linkmode=external" >/dev/null
# Debian's place for zsh completions; man pages compressed.
mkdir -p "$root/usr/share/zsh/vendor-completions"
mv "$root/usr/share/zsh/site-functions/_inopipe" "$root/usr/share/zsh/vendor-completions/"
rmdir "$root/usr/share/zsh/site-functions"
gzip -9n "$root"/usr/share/man/man*/*

doc=$root/usr/share/doc/inopipe
install -d "$doc" "$root/etc/inopipe"
install -d -m 0700 "$root/var/spool/inopipe"
install -d "$root/usr/share/lintian/overrides"
cat > "$root/usr/share/lintian/overrides/inopipe" <<'EOF'
# The spool holds batches that become rsync runs deleting on the targets:
# rpush refuses a spool others could write, and keeps it 0700.
inopipe: non-standard-dir-perm 0700 != 0755 [var/spool/inopipe/]
# No project mail address exists yet.
inopipe: bogus-mail-host-in-debian-changelog *
inopipe: bogus-mail-host *
EOF
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: inopipe
Source: https://github.com/inopipe/inopipe

Files: *
Copyright: 2026 the inopipe authors
License: Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 can be found
 in /usr/share/common-licenses/Apache-2.0.
EOF
printf 'inopipe (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- inopipe <inopipe@localhost>  %s\n' \
	"$version" "$desc" "$(date -R -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")" | gzip -9n > "$doc/changelog.gz"
cat > "$root/etc/inopipe/example.env" <<'EOF'
# An inopipe pipeline: copy to /etc/inopipe/NAME.env, edit, then
#   inopipe-run --check /etc/inopipe/NAME.env
#   systemctl enable --now inopipe@NAME.service failreplay@NAME.timer
# The file is data (KEY=value, comments on their own lines): inopipe-run(8).
SOURCE=/var/www/html
TARGETS=web2::www
PASSWORD_FILE=/etc/inopipe/rsync.pass
EVFILTER_OPTS=--temp
SPOOL=/var/spool/inopipe/example
EOF
chmod 0644 "$root/etc/inopipe/example.env"

install -d "$root/DEBIAN"
echo /etc/inopipe/example.env > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: inopipe
Version: $version
Architecture: $arch
Maintainer: inopipe <inopipe@localhost>
Installed-Size: $size
Depends: libc6, rsync
Section: net
Priority: optional
Description: real-time file replication as Unix filters (inotify + rsync)
 inopipe replaces inotifywait | rsync scripts, sersync and lsyncd with small
 tools that compose as a pipeline: inowait (inotifywait rebuilt, recursive
 watching that misses nothing), evfilter, evbatch, rpush (parallel rsync to
 several targets, failures spooled) and failreplay, supervised by
 inopipe-run from /etc/inopipe/NAME.env. sersync2inopipe converts a
 sersync configuration.
EOF
dpkg-deb --root-owner-group -Zxz --build "$root" . >/dev/null
deb=inopipe_${version}_$arch.deb
if command -v lintian >/dev/null; then
	# Native package built without debian/ sources: no source checks.
	lintian --tag-display-limit 0 --fail-on error,warning "$deb" >&2
fi
echo "$deb"
