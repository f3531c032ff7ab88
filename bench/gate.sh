#!/bin/bash
# The cost of rpush's safety gate, as ratios against the same run without it:
# a 2,000-path batch and a full sync of a 50,000-file tree to a local target,
# with and without --max-delete (which adds the dry run that counts deletions).
# The gate's other checks (stat, mount table) are BenchmarkGateCheck in
# internal/push. Medians of 5. Run after make build.
set -e
B=$(cd "$(dirname "$0")/.." && pwd)/bin
W=$(mktemp -d)
mk() { # $1 dir, $2 nfiles
  mkdir -p "$1"; (cd "$1"; for d in $(seq 0 99); do mkdir -p d$d; done; for i in $(seq 1 $2); do echo $i > d$((i%100))/f$i; done) }
mk $W/src50k 50000
mk $W/src2k 2000
# 2000-path batch: every file listed
python3 - "$W" <<'PY'
import sys,json
w=sys.argv[1]
paths=["d%d/f%d"%(i%100,i) for i in range(1,2001)]
open(w+"/b2k.jsonl","w").write(json.dumps({"seq":1,"root":w+"/src2k/","sync":paths,"delete":["gone%d"%i for i in range(10)]})+"\n")
open(w+"/full.jsonl","w").write(json.dumps({"seq":1,"root":w+"/src50k/","full":True,"sync":[],"delete":[]})+"\n")
PY
run() { # label batchfile src extra...
  local f=$1; shift
  local ts=()
  for r in 1 2 3 4 5; do
    rm -rf $W/tgt; mkdir $W/tgt
    # the target already holds the source (the steady state) plus a file to delete
    cp -a $W/$SRC/. $W/tgt/; echo x > $W/tgt/stale
    s=$(date +%s.%N); $B/rpush --spool $W/spool --quiet "$@" $W/tgt < $W/$f; e=$(date +%s.%N)
    ts+=($(echo "$e - $s" | bc))
  done
  printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p
}
mkdir -m 700 -p $W/spool
SRC=src2k; a=$(run b2k.jsonl); b=$(run b2k.jsonl --max-delete 100)
echo "2000-path batch: gate checks only ${a}s; with --max-delete (dry-run count) ${b}s; ratio $(echo "scale=2; $b/$a" | bc)"
SRC=src50k; a=$(run full.jsonl); b=$(run full.jsonl --max-delete 100)
echo "full sync 50,000 files: gate checks only ${a}s; with --max-delete ${b}s; ratio $(echo "scale=2; $b/$a" | bc)"
rm -rf $W
