#!/bin/bash
# bench/rules.sh — the cost of the pipeline's rules on a full sync: rpush
# with a full batch of a 20,000-file tree (nothing to send) to a local
# target, without rules and with the README's (evfilter --temp -x
# '^cache/': 20 rsync patterns), as a ratio. Medians of $RUNS (default 5).
# Needs bin/rpush and bin/evfilter (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
N=${N:-20000}
work=$(mktemp -d /tmp/inopipe-rules.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" && mkdir -m 700 "$work/spool"
for d in $(seq 1 $((N / 100))); do
	mkdir "$work/src/d$d"
	for i in $(seq 1 100); do echo "$d $i" > "$work/src/d$d/f$i.html"; done
done
cp -a "$work/src/." "$work/tgt/" 2>/dev/null || { mkdir "$work/tgt"; cp -a "$work/src/." "$work/tgt/"; }
rules=$(bin/evfilter --print-rules --temp -x '^cache/')
printf '{"seq":1,"root":"%s/","sync":[],"delete":[],"full":true}\n' "$work/src" > "$work/plain.jsonl"
printf '{"seq":1,"root":"%s/","sync":[],"delete":[],"full":true,"rules":%s}\n' "$work/src" "$(echo "$rules" | sed 's/^{"rules"://; s/}$//')" > "$work/rules.jsonl"
one() {
	local s e
	s=$(date +%s.%N)
	bin/rpush --spool "$work/spool" --quiet "$work/tgt" < "$work/$1"
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
a=() b=()
for r in $(seq 1 "$RUNS"); do
	if [ $((r % 2)) -eq 1 ]; then a+=("$(one plain.jsonl)"); b+=("$(one rules.jsonl)")
	else b+=("$(one rules.jsonl)"); a+=("$(one plain.jsonl)"); fi
done
ma=$(printf '%s\n' "${a[@]}" | median) mb=$(printf '%s\n' "${b[@]}" | median)
echo "full sync of $N files: no rules ${ma}s; README rules ${mb}s; ratio $(echo "scale=3; $mb / $ma" | bc)"
