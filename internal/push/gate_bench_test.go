package push

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkGateCheck is the part of the gate every rsync run pays: stat of
// the root, the mount table (for runs that delete) and one directory entry.
// Compare with the run itself (an rsync process: milliseconds).
func BenchmarkGateCheck(b *testing.B) {
	root := b.TempDir()
	os.WriteFile(filepath.Join(root, "f"), nil, 0o644)
	for _, deletes := range []bool{false, true} {
		name := "adds"
		if deletes {
			name = "deletes"
		}
		b.Run(name, func(b *testing.B) {
			var g Gate
			for b.Loop() {
				if err := g.Check(root+"/", deletes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
