package push

import (
	"context"
	"errors"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// maxRemoteRenames bounds the extra rsync runs one batch spends on
// renames for a daemon or ssh target (a git checkout can rename hundreds
// of files; each rename is one run); the rest go the plain way.
const maxRemoteRenames = 16

// renames applies b's renames on target t before the batch's runs, each
// only when it is certain: the source shows the rename done (From gone,
// To there with the right type), and, on a local target, the target's
// From is what the source's To is (type; size and mtime for a file).
// Anything uncertain is left to the batch's own syncs and deletes, which
// hold the whole change: correctness never depends on a rename.
//
// It returns the written list for the runs: the batch's, plus each
// renamed file whose rename was not applied (its data is then not known
// to be on the target, and must be sent whatever size and mtime say), how
// many renames were applied, and the bytes their runs sent.
func (p *Pusher) renames(ctx context.Context, t rsync.Target, src string, b *event.Batch) (written []string, applied int, sent int64) {
	written = b.Written
	if len(b.Renames) == 0 || b.Full || p.Opts.DryRun {
		return written, 0, 0
	}
	remote := 0
	for _, r := range b.Renames {
		ok := false
		if st, err := sourceRenamed(src, r); err == nil {
			switch {
			case t.Kind == rsync.Local:
				ok = renameLocal(t.Dest, r, st) == nil
			case remote < maxRemoteRenames:
				remote++
				var n int64
				ok, n = p.renameRemote(ctx, t, src, b, r)
				sent += max(n, 0)
			}
		}
		if ok {
			applied++
			continue
		}
		if !r.Dir && !slices.Contains(written, r.To) {
			written = append(append([]string(nil), written...), r.To)
		}
	}
	return written, applied, sent
}

var errNotRenamed = errors.New("the source does not show this rename")

// sourceRenamed checks that the source holds the rename's result: From
// gone, To there, a directory exactly when the rename says so.
func sourceRenamed(src string, r event.Rename) (unix.Stat_t, error) {
	var st unix.Stat_t
	if !safeRel(r.From) || !safeRel(r.To) {
		return st, errNotRenamed
	}
	if err := unix.Lstat(src+r.From, &st); !errors.Is(err, unix.ENOENT) {
		return st, errNotRenamed
	}
	if err := unix.Lstat(src+r.To, &st); err != nil {
		return st, err
	}
	if (st.Mode&unix.S_IFMT == unix.S_IFDIR) != r.Dir {
		return st, errNotRenamed
	}
	return st, nil
}

// safeRel: relative, no empty, "." or ".." element.
func safeRel(s string) bool {
	if s == "" || strings.HasPrefix(s, "/") {
		return false
	}
	for _, e := range strings.Split(s, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

// renameLocal renames From to To inside the target directory dest with
// renameat(2) on directories opened beneath dest without following any
// symlink (a symlink on the target can never lead the rename outside),
// after checking that the target's From is what the source's To is.
func renameLocal(dest string, r event.Rename, want unix.Stat_t) error {
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
	if have.Mode&unix.S_IFMT != want.Mode&unix.S_IFMT {
		return errNotRenamed
	}
	if want.Mode&unix.S_IFMT == unix.S_IFREG && (have.Size != want.Size || have.Mtim != want.Mtim) {
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

// renameRemote brings To to a daemon or ssh target from the data the
// target already has at From, with rsync's own basis-file mechanisms
// (rsync.RenameArgs): a hard link where the name is the same (a
// directory's files, a file moved to another directory), the fuzzy basis
// otherwise. No command is built from a name: the names are rsync
// arguments (with --secluded-args over ssh).
func (p *Pusher) renameRemote(ctx context.Context, t rsync.Target, src string, b *event.Batch, r event.Rename) (bool, int64) {
	o := p.Opts
	rules, ok := rsync.SubtreeRules(b.Rules, rsync.RenameRoot(r))
	if !ok {
		return false, 0 // a rule could select differently below the run's root
	}
	o.Rules = rules
	args, stdin := rsync.RenameArgs(o, t, src, r)
	if err := p.Gate.Check(src, false); err != nil {
		return false, 0
	}
	out := p.Runner.Run(ctx, rsync.Run{Binary: p.Binary, Args: args, Env: p.Env, Stdin: stdin})
	if out.Exit != 0 && p.Warnf != nil {
		p.Warnf("rename of %s to %s on %s: rsync exit %d (%s); sending it the plain way", r.From, r.To, t.Spec, out.Exit, lastLines(out.Stderr, 2))
	}
	return out.Exit == 0, out.Bytes
}
