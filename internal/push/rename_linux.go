//go:build linux

package push

import (
	"errors"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/event"
)

// renameLocal renames From to To inside the target directory dest with
// renameat(2) on directories opened beneath dest without following any
// symlink (a symlink on the target can never lead the rename outside),
// after checking that the target's From is what the source's To is.
func renameLocal(dest string, r event.Rename, want os.FileInfo) error {
	root, err := unix.Open(dest, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	fromDir, err := openBeneath(root, path.Dir(r.From))
	if err != nil {
		return err
	}
	defer unix.Close(fromDir)
	toDir, err := openBeneath(root, path.Dir(r.To))
	if errors.Is(err, unix.ENOENT) {
		// A new directory (mkdir new; mv big new/): make it, beneath the
		// target as well; the batch's sync sets its attributes.
		if err = mkdirBeneath(root, path.Dir(r.To)); err == nil {
			toDir, err = openBeneath(root, path.Dir(r.To))
		}
	}
	if err != nil {
		return err
	}
	defer unix.Close(toDir)
	var have unix.Stat_t
	if err := unix.Fstatat(fromDir, path.Base(r.From), &have, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if !sameType(have.Mode, want.Mode()) {
		return errNotRenamed
	}
	if want.Mode().IsRegular() && (have.Size != want.Size() || !time.Unix(have.Mtim.Sec, have.Mtim.Nsec).Equal(want.ModTime())) {
		return errNotRenamed // not the data the source moved
	}
	var there unix.Stat_t
	if err := unix.Fstatat(toDir, path.Base(r.To), &there, unix.AT_SYMLINK_NOFOLLOW); err == nil && there.Mode&unix.S_IFMT == unix.S_IFDIR {
		return os.ErrExist // never over a directory: the syncs deal with it
	}
	return unix.Renameat(fromDir, path.Base(r.From), toDir, path.Base(r.To))
}

// mkdirBeneath makes dir and its missing parents under root, each parent
// opened beneath root without symlinks.
func mkdirBeneath(root int, dir string) error {
	parent := "."
	for _, name := range strings.Split(dir, "/") {
		fd, err := openBeneath(root, parent)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(fd, name, 0o755)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		parent = path.Join(parent, name)
	}
	return nil
}

// openBeneath opens dir (relative, "." for the root) under root, every
// element a real directory: no symlink, no "..", no escape.
func openBeneath(root int, dir string) (int, error) {
	return unix.Openat2(root, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// sameType compares a stat(2) mode with a FileMode's type.
func sameType(m uint32, fm os.FileMode) bool {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return fm.IsRegular()
	case unix.S_IFDIR:
		return fm.IsDir()
	case unix.S_IFLNK:
		return fm&os.ModeSymlink != 0
	case unix.S_IFIFO:
		return fm&os.ModeNamedPipe != 0
	case unix.S_IFSOCK:
		return fm&os.ModeSocket != 0
	case unix.S_IFCHR:
		return fm&os.ModeCharDevice != 0
	case unix.S_IFBLK:
		return fm&os.ModeDevice != 0 && fm&os.ModeCharDevice == 0
	}
	return false
}
