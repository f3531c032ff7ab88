// Command table turns `go test -bench` output into markdown tables of
// medians, one row per benchmark, one column per metric: the e2e
// benchmarks report what each run measured with b.ReportMetric and run
// once per -count, so the median of N runs is a median of N lines.
//
//	go test -tags e2e -run '^$' -bench . -benchtime 1x -count 3 ./e2e/ | go run ./bench/table
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A result line: name, iterations, then value-unit pairs.
var line = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func main() {
	type row struct {
		name    string
		metrics map[string][]float64
	}
	var rows []*row
	byName := map[string]*row{}
	var units []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		r := byName[m[1]]
		if r == nil {
			r = &row{name: m[1], metrics: map[string][]float64{}}
			byName[m[1]] = r
			rows = append(rows, r)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil || f[i+1] == "ns/op" {
				continue
			}
			r.metrics[f[i+1]] = append(r.metrics[f[i+1]], v)
			if !seen[f[i+1]] {
				seen[f[i+1]] = true
				units = append(units, f[i+1])
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
	// One table per top-level benchmark.
	var top string
	var cols []string
	for _, r := range rows {
		t, sub, _ := strings.Cut(strings.TrimPrefix(r.name, "Benchmark"), "/")
		if t != top {
			top = t
			cols = nil
			for _, u := range units {
				for _, r2 := range rows {
					if strings.HasPrefix(r2.name, "Benchmark"+t+"/") && len(r2.metrics[u]) > 0 {
						cols = append(cols, u)
						break
					}
				}
			}
			fmt.Printf("\n### %s (medians)\n\n| run | %s | runs |\n|---|%s---|\n", t, strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
		}
		cells := []string{strings.ReplaceAll(sub, "_", " ")}
		n := 0
		for _, u := range cols {
			v := r.metrics[u]
			n = max(n, len(v))
			if len(v) == 0 {
				cells = append(cells, "—")
				continue
			}
			cells = append(cells, strconv.FormatFloat(median(v), 'f', 2, 64))
		}
		fmt.Printf("| %s | %d |\n", strings.Join(cells, " | "), n)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
