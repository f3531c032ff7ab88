package main

import (
	"testing"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

// BenchmarkStage: 200,000 event lines through the real binary.
func BenchmarkStage(b *testing.B) {
	clitest.BenchStage(b, 200000, bin(), "--max-delay", "1h", "1h")
}
