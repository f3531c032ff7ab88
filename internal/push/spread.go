package push

import (
	"os"
	"path"
	"slices"
	"strings"
)

// A recursive entry ("dir/": a new tree from cp -r, tar x, mv) is one rsync
// run, so -j N gains nothing on a batch that is one large tree. spread
// shares such a tree among the jobs without changing what it deletes:
//
//   - the subdirectories a few levels down (units) are dealt round-robin
//     over the jobs; job k > 0 copies its units as recursive entries of
//     its own ("dir/sub/"), with --delete inside each, as any "dir/";
//   - job 0 keeps the batch's recursive entries as they were, and an
//     exclude rule ("- /dir/sub", anchored, literal) for every unit another
//     job copies. rsync never deletes what a run excludes (rpush refuses
//     --delete-excluded), so each unit is copied and pruned by exactly one
//     run, and everything else under the entry (its files, the units job 0
//     kept, what appears after the listing) by job 0, as before.
//
// A subdirectory that appears or goes between the listing and the runs is
// still covered: job 0 copies (or deletes) what it does not exclude, and a
// unit gone from the source is a listed path gone, deleted on the target
// by its job. The pipeline's rules come first in every run, so what they
// exclude stays excluded, listed or not.
//
// Only names that are literal rsync patterns as they are become units (no
// wildcard or backslash, no control character, no space at either end);
// any other directory stays with job 0, which copies it whole.

// Bounds on spreading: directories read to find units (levels, count),
// units per job wanted before descending no further, the units handed to
// other jobs (each is one rule that job 0's rsync matches against each of
// its files), and the entries read in one directory.
const (
	spreadLevels  = 3
	spreadReads   = 256
	spreadPerJob  = 4
	spreadMaxUnit = 1024
	spreadScan    = 64 << 10
)

// spread finds units under the recursive entries of paths (relative,
// "dir/" or "." for the root) and deals them over n jobs. It returns the
// recursive entries each job k > 0 copies (others[k-1]) and job 0's
// exclude patterns; nothing (nil, nil) when the trees are too small to be
// worth more than one run: fewer than two units, or fewer than minEntries
// entries found in the directories read.
func spread(src string, paths []string, n, minEntries int) (others [][]string, exclude []string) {
	if n < 2 {
		return nil, nil
	}
	var frontier []string
	for _, p := range paths {
		if p == "." || p == "./" {
			frontier = append(frontier, ".")
		} else if strings.HasSuffix(p, "/") && realDir(src, strings.TrimSuffix(p, "/")) {
			frontier = append(frontier, strings.TrimSuffix(p, "/"))
		}
	}
	units, entries, reads, descended := frontier, 0, 0, false
	for level := 0; level < spreadLevels && len(units) < n*spreadPerJob; level++ {
		var next []string
		for _, d := range units {
			if reads == spreadReads {
				break // the rest stays with job 0
			}
			reads++
			subs, count := subdirs(src, d)
			entries += count
			next = append(next, subs...)
		}
		if len(next) == 0 {
			break
		}
		units, descended = next, true
	}
	// The entries themselves are job 0's, never units.
	if !descended || len(units) < 2 || entries < minEntries {
		return nil, nil
	}
	units = units[:min(len(units), spreadMaxUnit*n/(n-1))]
	others = make([][]string, n-1)
	for i, u := range units {
		if k := i % n; k > 0 {
			others[k-1] = append(others[k-1], u+"/")
			exclude = append(exclude, "/"+u)
		}
	}
	return others, exclude
}

// subdirs lists the directories directly in rel (under src) whose names
// can be units, sorted, and counts every entry. It reads at most
// spreadScan entries: a directory of a million files is not listed to
// share it (what is not read stays with job 0).
func subdirs(src, rel string) (dirs []string, entries int) {
	dir := src + rel + "/"
	if rel == "." {
		dir = src
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, 0
	}
	defer f.Close()
	for entries < spreadScan {
		ents, err := f.ReadDir(1024)
		for _, e := range ents {
			if !e.IsDir() || !literalName(e.Name()) {
				continue
			}
			if rel == "." {
				dirs = append(dirs, e.Name())
			} else {
				dirs = append(dirs, path.Join(rel, e.Name()))
			}
		}
		entries += len(ents)
		if err != nil {
			break
		}
	}
	slices.Sort(dirs)
	return dirs, entries
}

// literalName reports whether an anchored rsync rule "/…/name" matches
// exactly the entry called name.
func literalName(name string) bool {
	if name == "" || strings.ContainsAny(name, `*?[\`) || name[0] == ' ' || name[len(name)-1] == ' ' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return false
		}
	}
	return true
}

// realDir reports whether rel is a directory under src through
// directories only: rsync copies a symlink as a symlink, so spread never
// looks through one.
func realDir(src, rel string) bool {
	p := strings.TrimSuffix(src, "/")
	for _, part := range strings.Split(rel, "/") {
		p += "/" + part
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}
