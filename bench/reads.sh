#!/bin/bash
# bench/reads.sh — what reading the source costs the README's pipeline
# (inowait -mr | evfilter --temp | evbatch | rpush to a local target):
# CPU seconds of the four stages while every file of a 20,000-file tree
# is read (cat), nothing changed. Once with inowait's JSON default (the
# events that change the tree) and once asking for every event as
# inotifywait does (-e with all of them), same run; medians of $RUNS
# (default 3). Needs bin/ (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-20000}
work=$(mktemp -d /tmp/inopipe-reads.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/src" "$work/tgt" && mkdir -m 700 "$work/spool"
for d in $(seq 1 $((N / 100))); do
	mkdir "$work/src/d$d"
	for i in $(seq 1 100); do echo "$d $i" > "$work/src/d$d/f$i"; done
done
ticks() { # utime+stime of a pid, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}
one() { # EVENTS-ARGS...: CPU seconds of the pipeline over the reads
	local fifo1="$work/f1" fifo2="$work/f2" fifo3="$work/f3" before=0 after=0 p
	rm -f "$fifo1" "$fifo2" "$fifo3" "$work/err"
	mkfifo "$fifo1" "$fifo2" "$fifo3"
	bin/inowait -mr "$@" "$work/src" > "$fifo1" 2> "$work/err" & pids=($!)
	bin/evfilter --temp < "$fifo1" > "$fifo2" & pids+=($!)
	bin/evbatch 200ms < "$fifo2" > "$fifo3" & pids+=($!)
	bin/rpush --quiet --spool "$work/spool" "$work/tgt" < "$fifo3" > /dev/null & pids+=($!)
	for _ in $(seq 1 200); do grep -q "watches established" "$work/err" && break; sleep 0.05; done
	for p in "${pids[@]}"; do before=$((before + $(ticks "$p"))); done
	find "$work/src" -type f -exec cat {} + > /dev/null
	sleep 1 # let the stages drain what the reads produced
	for p in "${pids[@]}"; do after=$((after + $(ticks "$p"))); done
	kill "${pids[0]}"; wait "${pids[@]}" 2>/dev/null || true
	echo "scale=3; ($after - $before) / $(getconf CLK_TCK)" | bc
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
a=() b=()
for _ in $(seq 1 "$RUNS"); do
	a+=("$(one)")
	b+=("$(one -e access,modify,attrib,close_write,close_nowrite,open,moved_from,moved_to,create,delete,delete_self,move_self)")
done
echo "reading $N files: pipeline CPU ${a[*]} s (JSON default: changes only), ${b[*]} s (every event, inotifywait's default)"
echo "medians: $(printf '%s\n' "${a[@]}" | median) s vs $(printf '%s\n' "${b[@]}" | median) s"
