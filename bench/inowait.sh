#!/bin/bash
# bench/inowait.sh — inowait against the installed inotifywait, same machine,
# same run: watch-setup time and peak RSS on a tree of $DIRS directories,
# and throughput/loss under a write storm of $FILES creates watched by both
# at once. Medians of $RUNS runs. Appends a section to bench/RESULTS.md
# when RESULTS=1. Needs inotifywait (make deps) and bin/inowait (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
DIRS=${DIRS:-100000}
FILES=${FILES:-200000}
RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/inopipe-bench.XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT

need=$((DIRS + 1000))
have=$(cat /proc/sys/fs/inotify/max_user_watches)
if [ "$have" -lt "$need" ]; then
	echo "bench: fs.inotify.max_user_watches is $have; $need needed for $DIRS directories" >&2
	echo "bench: raise it (sysctl fs.inotify.max_user_watches=$need) or run with DIRS=$((have - 1000))" >&2
	exit 1
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "bench: building a tree of $DIRS directories" >&2
tree=$work/tree
mkdir -p "$tree"
top=$(( (DIRS + 999) / 1000 ))
(cd "$tree" && for i in $(seq 1 "$top"); do mkdir -p "d$i" && (cd "d$i" && seq -f 's%g' 1 999 | xargs mkdir); done)
ndirs=$(find "$tree" -type d | wc -l)

# setup NAME CMD...: seconds until the "established" line, and VmHWM (KiB)
setup() {
	local name=$1; shift
	local err=$work/$name.err
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>"$err" &
	local pid=$!
	for _ in $(seq 1 6000); do grep -qi "watches established" "$err" && break; sleep 0.01; done
	t1=$(date +%s.%N)
	local hwm
	hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	kill $pid; wait $pid 2>/dev/null || true
	echo "$(echo "$t1 - $t0" | bc) $hwm"
}

declare -A T R
# inowait twice: as a pipeline runs it (JSON: the events that change the
# tree), and as an inotifywait script does (text: every event)
for tool in inotifywait inowait inowait-text; do
	ts=(); rs=()
	for _ in $(seq 1 "$RUNS"); do
		case $tool in
		inowait) out=$(setup $tool bin/inowait -mr "$tree") ;;
		inowait-text) out=$(setup $tool bin/inowait -mr --format '%w%f %e' "$tree") ;;
		*) out=$(setup $tool inotifywait -mr "$tree") ;;
		esac
		ts+=("${out% *}"); rs+=("${out#* }")
	done
	T[$tool]=$(printf '%s\n' "${ts[@]}" | median)
	R[$tool]=$(printf '%s\n' "${rs[@]}" | median)
	echo "bench: $tool setup ${T[$tool]}s rss ${R[$tool]} KiB (runs: ${ts[*]})" >&2
done

echo "bench: write storm of $FILES creates, both tools watching" >&2
storm=$work/storm
declare -A E
for run in $(seq 1 "$RUNS"); do
	rm -rf "$storm"; mkdir -p "$storm"
	for i in $(seq 1 20); do mkdir "$storm/s$i"; done
	inotifywait -mr -e create --format '%w%f' "$storm" > "$work/iw.out" 2>"$work/iw.err" & iwp=$!
	bin/inowait -mr -e create --format '%w%f' "$storm" > "$work/io.out" 2>"$work/io.err" & iop=$!
	for _ in $(seq 1 1000); do
		grep -qi "watches established" "$work/iw.err" && grep -qi "watches established" "$work/io.err" && break
		sleep 0.01
	done
	t0=$(date +%s.%N)
	(cd "$storm" && for i in $(seq 1 20); do (cd "s$i" && seq -f "f%g" 1 $((FILES / 20)) | xargs touch) & done; wait)
	t1=$(date +%s.%N)
	for _ in $(seq 1 300); do
		a=$(wc -l < "$work/iw.out"); b=$(wc -l < "$work/io.out")
		[ "$a" -ge "$FILES" ] && [ "$b" -ge "$FILES" ] && break
		sleep 0.1
	done
	kill $iwp $iop; wait $iwp $iop 2>/dev/null || true
	a=$(wc -l < "$work/iw.out"); b=$(wc -l < "$work/io.out")
	E[iw$run]=$a; E[io$run]=$b
	rate=$(echo "$FILES / ($t1 - $t0)" | bc)
	echo "bench: run $run: storm $rate creates/s; inotifywait got $a, inowait got $b of $FILES" >&2
done
iw_lost=$(for r in $(seq 1 "$RUNS"); do n=${E[iw$r]}; echo "$((FILES - n))"; done | median)
io_lost=$(for r in $(seq 1 "$RUNS"); do n=${E[io$r]}; echo "$((FILES - n))"; done | median)

report() {
	echo "### inowait vs inotifywait ($(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), inotifywait $(inotifywait --help 2>&1 | head -1 | awk '{print $2}'))"
	echo
	echo "Medians of $RUNS runs, both tools on the same machine in the same run."
	echo
	echo "| measure | inotifywait | inowait | ratio (inowait/inotifywait) |"
	echo "|---|---|---|---|"
	echo "| watch setup, $ndirs dirs (s), JSON | ${T[inotifywait]} | ${T[inowait]} | $(echo "scale=2; ${T[inowait]} / ${T[inotifywait]}" | bc) |"
	echo "| watch setup, $ndirs dirs (s), text, every event | ${T[inotifywait]} | ${T[inowait-text]} | $(echo "scale=2; ${T[inowait-text]} / ${T[inotifywait]}" | bc) |"
	echo "| peak RSS during setup (KiB), JSON | ${R[inotifywait]} | ${R[inowait]} | $(echo "scale=2; ${R[inowait]} / ${R[inotifywait]}" | bc) |"
	echo "| peak RSS during setup (KiB), text | ${R[inotifywait]} | ${R[inowait-text]} | $(echo "scale=2; ${R[inowait-text]} / ${R[inotifywait]}" | bc) |"
	echo "| creates lost of $FILES (storm) | $iw_lost | $io_lost | |"
	echo
}
report
if [ "${RESULTS:-0}" = 1 ]; then report >> bench/RESULTS.md; fi
