#!/bin/bash
# bench/gate.sh — the cost of rpush's safety gate, as ratios against the
# same run without it: a 2,000-path batch and a full sync of a 50,000-file
# tree to a local target whose content already matches (the steady state)
# but for one stale file, with and without --max-delete (which adds the dry
# run that counts deletions). The gate's other checks (stat, mount table)
# are BenchmarkGateCheck in internal/push. Medians of $RUNS (default 5).
# Needs bin/rpush (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
work=$(mktemp -d /tmp/inopipe-gate.XXXXXX)
trap 'rm -rf "$work"' EXIT

tree() { # DIR NFILES: NFILES small files spread over 100 directories
	mkdir -p "$1"
	(cd "$1" && for d in $(seq 0 99); do mkdir "d$d"; done &&
		for i in $(seq 1 "$2"); do echo "$i" > "d$((i % 100))/f$i"; done)
}
tree "$work/src2k" 2000
tree "$work/src50k" 50000
mkdir -m 700 "$work/spool"
{
	printf '{"seq":1,"root":"%s/","sync":[' "$work/src2k"
	for i in $(seq 1 2000); do [ "$i" -gt 1 ] && printf ','; printf '"d%d/f%d"' $((i % 100)) "$i"; done
	printf '],"delete":["stale"]}\n'
} > "$work/b2k.jsonl"
printf '{"seq":1,"root":"%s/","full":true,"sync":[],"delete":[]}\n' "$work/src50k" > "$work/full.jsonl"

# median SRC BATCH [RPUSH OPTION...]: seconds of one rpush run, median
median() {
	local src=$1 batch=$2 times=() s e
	shift 2
	for _ in $(seq 1 "$RUNS"); do
		rm -rf "$work/tgt"
		cp -a "$work/$src/." "$work/tgt/"
		echo x > "$work/tgt/stale"
		s=$(date +%s.%N)
		bin/rpush --spool "$work/spool" --quiet "$@" "$work/tgt" < "$work/$batch"
		e=$(date +%s.%N)
		times+=("$(echo "$e - $s" | bc)")
	done
	printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
a=$(median src2k b2k.jsonl); b=$(median src2k b2k.jsonl --max-delete 100)
echo "2,000-path batch: ${a}s; with --max-delete ${b}s; ratio $(echo "scale=2; $b / $a" | bc)"
a=$(median src50k full.jsonl); b=$(median src50k full.jsonl --max-delete 100)
echo "full sync of 50,000 files: ${a}s; with --max-delete ${b}s; ratio $(echo "scale=2; $b / $a" | bc)"
