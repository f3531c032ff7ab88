#!/bin/bash
# bench/written.sh — the cost of sending kernel-reported writes with
# --ignore-times (batch field "written"), as ratios against the same batch
# without it (rsync's quick check), to a local target: 2,000 new 100 KiB
# files, and 2,000 rewritten ones (new content and mtime). Medians of $RUNS
# (default 5). Needs bin/rpush (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
N=${N:-2000}
work=$(mktemp -d /tmp/inopipe-written.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" && mkdir -m 700 "$work/spool"
for i in $(seq 1 "$N"); do head -c 102400 /dev/urandom > "$work/src/f$i"; done
list() { for i in $(seq 1 "$N"); do [ "$i" -gt 1 ] && printf ','; printf '"f%d"' "$i"; done; }
printf '{"seq":1,"root":"%s/","sync":[%s],"delete":[]}\n' "$work/src" "$(list)" > "$work/plain.jsonl"
printf '{"seq":1,"root":"%s/","sync":[%s],"delete":[],"written":[%s]}\n' "$work/src" "$(list)" "$(list)" > "$work/written.jsonl"

# one PREPARE BATCH: seconds of one rpush run after PREPARE set up the target
one() {
	local prep=$1 batch=$2 s e
	rm -rf "$work/tgt" && mkdir "$work/tgt"
	"$prep"
	sync
	s=$(date +%s.%N)
	bin/rpush --spool "$work/spool" --quiet "$work/tgt" < "$work/$batch"
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
# pair PREPARE: both batches RUNS times, alternating which goes first (the
# disk's writeback of one run must not weigh on the other's only)
pair() {
	local a=() b=()
	for r in $(seq 1 "$RUNS"); do
		if [ $((r % 2)) -eq 1 ]; then
			a+=("$(one "$1" plain.jsonl)"); b+=("$(one "$1" written.jsonl)")
		else
			b+=("$(one "$1" written.jsonl)"); a+=("$(one "$1" plain.jsonl)")
		fi
	done
	printf '%s %s\n' "$(printf '%s\n' "${a[@]}" | median)" "$(printf '%s\n' "${b[@]}" | median)"
}
new() { :; }                                         # an empty target: every file is new
old() { cp -a "$work/src/." "$work/tgt/"; for f in "$work/tgt"/f*; do printf x | dd of="$f" bs=1 count=1 conv=notrunc status=none; touch -d @1 "$f"; done; }
same() { cp -a "$work/src/." "$work/tgt/"; }           # written, but the target has it already (touch -r)
for c in new old same; do
	read -r a b <<< "$(pair "$c")"
	echo "$c: quick check ${a}s; --ignore-times ${b}s; ratio $(echo "scale=2; $b / $a" | bc)"
done
