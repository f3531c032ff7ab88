#!/bin/bash
# demo.sh — watch inopipe sync a temp tree to a local rsync daemon.
# Run by `make demo` (which builds bin/ first). Cleans up after itself;
# every wait is bounded.
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
work=$(mktemp -d /tmp/inopipe-demo.XXXXXX)
chmod 755 "$work"
pids=()        # what the demo started, stopped by PID (never by a name
inowait_pid="" # pattern, which could match an operator's own pipeline)
cleanup() {
	# Stop the first stage: the others drain and exit on end of input.
	[ -z "$inowait_pid" ] || kill -TERM "$inowait_pid" 2>/dev/null || true
	for _ in $(seq 50); do
		if [ -z "$pipeline_pid" ] || ! kill -0 "$pipeline_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
pipeline_pid=""
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { # print lines added to a log since the last call, with a label
	local f=$1 label=$2 n
	n=$(wc -l < "$f")
	local seen_var="seen_${label//[^a-z]/_}"
	local seen=${!seen_var:-0}
	if [ "$n" -gt "$seen" ]; then
		tail -n +"$((seen + 1))" "$f" | head -n "$((n - seen))" |
			sed -E -e "s|$src/||g" -e 's/^\{"time":"[^"]*",/{/' \
				-e '/^\{"root"/s/.*"path":"([^"]*)","events":\[([^]]*)\](.*)/\2 \1 \3/' -e 's/"//g' |
			cut -c1-150 | sed "s/^/  $label  /"
	fi
	printf -v "$seen_var" '%s' "$n"
}
wait_until() { # wait_until SECONDS command...: poll, bounded
	local limit=$1; shift
	local end=$((SECONDS + limit))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || { echo "demo: timed out waiting for: $*" >&2; return 1; }
		sleep 0.1
	done
}

src=$work/source; mod=$work/module; spool=$work/spool
mkdir -p "$src/www" "$mod" && mkdir -m 700 "$spool"
echo "<h1>hello</h1>" > "$src/www/index.html"
echo "body{}" > "$src/www/site.css"

say "an rsync daemon on 127.0.0.1 with an auth module"
port=""
for p in $(seq 28730 28830); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
printf 'demo:demo-password\n' > "$work/secrets"; chmod 600 "$work/secrets"
printf 'demo-password\n' > "$work/pass"; chmod 600 "$work/pass"
cat > "$work/rsyncd.conf" <<CONF
pid file = $work/rsyncd.pid
address = 127.0.0.1
port = $port
use chroot = no
munge symlinks = no
[data]
    path = $mod
    read only = no
    auth users = demo
    secrets file = $work/secrets
    uid = $(id -u)
    gid = $(id -g)
CONF
rsync --daemon --no-detach --config="$work/rsyncd.conf" & pids+=($!)
wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
echo "  rsync://demo@127.0.0.1:$port/data  ->  $mod"

say "the pipeline"
target="rsync://demo@127.0.0.1:$port/data/"
echo "  inowait -mr --resync -e create,close_write,attrib,moved_from,moved_to,delete $src | evfilter --temp | evbatch 300ms | rpush --password-file pass $target"
mkfifo "$work/events.fifo"
"$BIN/inowait" -mr --resync -e create,close_write,attrib,moved_from,moved_to,delete "$src" 2>"$work/inowait.err" > "$work/events.fifo" &
inowait_pid=$!
pids+=("$inowait_pid")
tee "$work/events" < "$work/events.fifo" |
	"$BIN/evfilter" --temp | "$BIN/evbatch" 300ms | tee "$work/batches" |
	"$BIN/rpush" --spool "$spool" --password-file "$work/pass" "$target" > "$work/results" &
pipeline_pid=$!
pids+=("$pipeline_pid")
wait_until 10 grep -q "watches established" "$work/inowait.err"
wait_until 20 grep -q '"ok":true' "$work/results"
echo "  (RESYNC after the watches were set: a full sync of what was already there)"
show "$work/events" "event "; show "$work/batches" "batch "; show "$work/results" "result"

step() {
	say "$1"; shift
	local before; before=$(wc -l < "$work/results")
	"$@"
	wait_until 20 bash -c "[ \$(wc -l < '$work/results') -gt $before ] && diff -r '$src' '$mod' >/dev/null"
	show "$work/events" "event "; show "$work/batches" "batch "; show "$work/results" "result"
}
step "a new directory with files (mkdir -p + writes at once)" \
	bash -c "mkdir -p '$src/blog/2026/11' && echo post > '$src/blog/2026/11/first.html' && echo img > '$src/blog/2026/11/pic.png'"
step "a file with a space in its name, and an editor's swap file (filtered)" \
	bash -c "echo x > '$src/www/.index.html.swp' && echo notes > '$src/www/release notes.txt' && rm '$src/www/.index.html.swp'"
step "a rename" mv "$src/www/site.css" "$src/www/style.css"
step "a delete" rm -r "$src/blog/2026"

say "verify: the target equals the source"
if diff -r "$src" "$mod"; then echo "  identical ($(find "$src" | wc -l) entries)"; else echo "  DIFFERENT"; exit 1; fi
say "done: stopping the pipeline and the daemon, removing $work"
