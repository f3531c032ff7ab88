#!/bin/bash
# shellcheck disable=SC2162,SC2034 # the tutorial's own read loop, kept as the anchor it is
# The tutorial script: a full rsync of the tree for every event.
# Env: SRC TARGET RSYNC_PASSWORD
inotifywait -mrq --format '%w%f' -e create,delete,moved_to,close_write "$SRC" |
	while read f; do
		rsync -az --delete "$SRC/" "$TARGET"
	done
