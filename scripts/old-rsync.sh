#!/bin/sh
# old-rsync.sh — fetch Debian 12's rsync 3.2.7 security update (3.2.7-1+deb12u5
# and later), whose receiver rejects --delete-missing-args deletions with
# "invalid file mode 00" (upstream issue #910). The e2e tests run it as a
# daemon to prove rpush's switch to filter mode against the real thing.
# It is unpacked with dpkg -x, never installed.
# Usage: scripts/old-rsync.sh DIR   → prints the path of the rsync binary
set -eu
dir=${1:?usage: old-rsync.sh DIR}
bin="$dir/usr/bin/rsync"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dir"
# The oldest version with the bug (deb12u6 is the one it was established on).
candidate() {
	apt-cache madison rsync 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
		grep -E '^3\.2\.7-1\+deb12u([5-9]|[1-9][0-9])$' | sort -V | head -n 1 || true
}
ver=$(candidate)
if [ -z "$ver" ] && [ "$(id -u)" -eq 0 ]; then
	# a fresh machine may have no package lists yet
	apt-get update -qq >/dev/null 2>&1 || true
	ver=$(candidate)
fi
if [ -z "$ver" ]; then
	echo "old-rsync: no rsync 3.2.7-1+deb12u5 or later in the apt sources (is bookworm's main listed? try apt-get update)" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download warns when _apt cannot write the directory; harmless.
(cd "$tmp" && apt-get download -q "rsync=$ver" >/dev/null 2>&1) || {
	echo "old-rsync: apt-get download rsync=$ver failed" >&2
	exit 1
}
dpkg -x "$tmp"/rsync_*.deb "$dir"
"$bin" --version >/dev/null
echo "$bin"
