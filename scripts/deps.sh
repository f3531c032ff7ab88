#!/bin/sh
# deps.sh — install the system packages inopipe's tests and demo need, only
# when they are missing: one `apt-get update`, then one `apt-get install`.
# Usage: scripts/deps.sh [package...]   (default: rsync inotify-tools lsyncd)
set -eu
[ $# -gt 0 ] || set -- rsync inotify-tools lsyncd

# The command each package provides, to tell whether it is installed.
cmd_of() {
	case "$1" in
	inotify-tools) echo inotifywait ;;
	openssh-server) echo sshd ;;
	*) echo "$1" ;;
	esac
}

missing=""
for pkg in "$@"; do
	c=$(cmd_of "$pkg")
	if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$c" ]; then
		missing="$missing $pkg"
	fi
done
[ -n "$missing" ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing:$missing (no apt-get here; install them by hand)" >&2
	exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
		echo "deps: missing:$missing; run as root or install them by hand" >&2
		exit 1
	fi
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
