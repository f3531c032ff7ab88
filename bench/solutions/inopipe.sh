#!/bin/bash
# inopipe, as the README runs it. Env: SRC TARGET PASSFILE WINDOW JOBS SPOOL BIN
set -o pipefail
export PATH="$BIN:$PATH"
inowait -mr --resync "$SRC" | evfilter --temp | evbatch "$WINDOW" |
	rpush --password-file "$PASSFILE" -j "$JOBS" --spool "$SPOOL" --retries 2 --backoff 500ms "$TARGET" >/dev/null
