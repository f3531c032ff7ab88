//go:build e2e

package e2e

import (
	"flag"
	"testing"
	"time"
)

// Benchmarks live beside the e2e tests because they need the same daemon,
// pipelines and tree comparison. They are Go benchmarks (make bench runs
// them through bench/solutions.sh): one run per iteration, what a run
// measured reported with b.ReportMetric; -benchtime 1x -count N and
// bench/table give medians. -short runs them at the sizes of make test.

// benchLimit cuts a run that does not converge.
var benchLimit = flag.Duration("bench.limit", 60*time.Second, "cut a benchmark run that has not converged after this long")

// benchSize is full, or small under -short.
func benchSize(full, small int) int {
	if testing.Short() {
		return small
	}
	return full
}
