package rsync

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// --stats numbers as rsync prints them in any locale; a missing count is
// -1, which the safety gate treats as "cannot tell" (never as 0).
func TestStatNumber(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int64
	}{
		{"Number of deleted files: 3 (reg: 2, dir: 1)\n", 3},
		{"Number of files: 9\nNumber of deleted files: 0\n", 0},
		{"Number of deleted files: 1,234\n", 1234},
		{"Number of deleted files: 1.234.567\n", 1234567},
		{"Number of deleted files: 99999999999999999999\n", math.MaxInt64},
		{"", -1},
		{"Number of files: 9\n", -1},
		{"Number of deleted files: \n", -1},
		{"Number of deleted files: x3\n", -1},
		{"not at a line start: Number of deleted files: 5\n", -1},
		{"x Number of deleted files: 5\nNumber of deleted files: 7\n", 7},
		{"Number of deleted files: 5", 5}, // no final newline
	} {
		if got := statNumber(deleted, []byte(tc.out)); got != tc.want {
			t.Errorf("statNumber(%q) = %d, want %d", tc.out, got, tc.want)
		}
	}
}

// FuzzStatNumber: the scan reads what the regexp it replaced read,
// wherever a count has a digit, and is -1 wherever that regexp found
// nothing.
func FuzzStatNumber(f *testing.F) {
	f.Add("Number of deleted files: 3 (reg: 2, dir: 1)\n")
	f.Add("a\nNumber of deleted files: ,\nNumber of deleted files: 1.2,3\n")
	re := regexp.MustCompile(`(?m)^Number of deleted files: ([0-9,.]*[0-9][0-9,.]*)`)
	f.Fuzz(func(t *testing.T, out string) {
		want := int64(-1)
		if m := re.FindStringSubmatch(out); m != nil {
			n, err := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(m[1]), 10, 64)
			if err != nil && n != math.MaxInt64 {
				t.Skip()
			}
			want = n
		}
		if got := statNumber(deleted, []byte(out)); got != want {
			t.Fatalf("statNumber(%q) = %d, the regexp reads %d", out, got, want)
		}
	})
}
