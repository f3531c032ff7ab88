#!/bin/bash
# lsyncd with default.rsync: delay = inopipe's window, maxProcesses = -j.
# Env: SRC TARGET PASSFILE WINDOW_S JOBS SPOOL
conf="$SPOOL/lsyncd.conf.lua"
cat > "$conf" <<LUA
settings { nodaemon = true, logfile = "$SPOOL/lsyncd.log", statusFile = "$SPOOL/lsyncd.status", maxProcesses = $JOBS }
sync {
	default.rsync,
	source = "$SRC",
	target = "$TARGET",
	delay = $WINDOW_S,
	rsync = { archive = true, password_file = "$PASSFILE" },
}
LUA
exec lsyncd "$conf"
