#!/bin/bash
# The tutorial script: a full rsync of the tree for every event.
# Env: SRC TARGET RSYNC_PASSWORD
inotifywait -mrq --format '%w%f' -e create,delete,moved_to,close_write "$SRC" |
	while read f; do
		rsync -az --delete "$SRC/" "$TARGET"
	done
