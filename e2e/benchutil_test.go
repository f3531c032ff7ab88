//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Benchmarks live beside the e2e tests because they need the same daemon,
// pipelines and tree comparison. They run only under `make bench`
// (INOPIPE_BENCH=1, or =small for a quick trial at reduced sizes) and
// append markdown tables to $INOPIPE_BENCH_OUT when it is set.

func benchRuns(t *testing.T) int {
	if os.Getenv("INOPIPE_BENCH") == "" {
		t.Skip("benchmark: run by make bench (INOPIPE_BENCH=1)")
	}
	if n, err := strconv.Atoi(os.Getenv("INOPIPE_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// benchSize is full under make bench, small for INOPIPE_BENCH=small.
func benchSize(full, small int) int {
	if os.Getenv("INOPIPE_BENCH") == "small" {
		return small
	}
	return full
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report logs a markdown table and appends it to $INOPIPE_BENCH_OUT.
func report(t *testing.T, title string, header []string, rows [][]string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s\n\n| %s |\n|%s\n", title, strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
	}
	t.Log(b.String())
	if out := os.Getenv("INOPIPE_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString(b.String())
	}
}
