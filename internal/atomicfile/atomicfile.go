// Package atomicfile replaces a file so that a reader sees the old
// content or the new, never half of it, and a crash loses neither: the
// spool's entries and targets.json, and rpush's status file, are written
// with it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of the temporary file Write creates beside
// path; a crash can leave one behind, and readers of a directory skip
// (and may remove) names that start with it.
const TempPrefix = ".tmp-"

// Write replaces path with data: a temporary file in the same directory,
// written, fsynced, given perm, closed and renamed over path, then the
// directory fsynced. On any error the temporary file is removed and path
// is left as it was.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that a rename or removal in it survives
// a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
