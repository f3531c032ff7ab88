#!/bin/bash
# shellcheck disable=SC2162 # the tutorial's own read loop, kept as the anchor it is
# The per-file variant: rsync only the changed file when it is a file,
# the whole tree otherwise (a dir, a delete). Env: SRC TARGET RSYNC_PASSWORD
cd "$SRC" || exit 1
inotifywait -mrq --format '%w%f' -e create,delete,moved_to,close_write "$SRC" |
	while read f; do
		if [ -f "$f" ]; then
			rsync -az -R -- "./${f#"$SRC"/}" "$TARGET"
		else
			rsync -az --delete "$SRC/" "$TARGET"
		fi
	done
