package push

import (
	"context"
	"errors"
	"os"
	"slices"

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
	// A rename takes a name away on the target: it passes the gate like
	// every run (root there, a directory, on the device first seen, its
	// sub-mounts in place), once for all of the batch's renames.
	gateErr := p.Gate.Check(src, false)
	var notApplied []string
	remote := 0
	for _, r := range b.Renames {
		ok := false
		if gateErr == nil {
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
		}
		if ok {
			applied++
		} else if !r.Dir {
			notApplied = append(notApplied, r.To)
		}
	}
	if len(notApplied) > 0 {
		have := make(map[string]bool, len(written))
		for _, w := range written {
			have[w] = true
		}
		written = slices.Clip(written)
		for _, to := range notApplied {
			if !have[to] {
				have[to] = true
				written = append(written, to)
			}
		}
	}
	return written, applied, sent
}

var errNotRenamed = errors.New("the source does not show this rename")

// sourceRenamed checks that the source holds the rename's result: From
// gone, To there, a directory exactly when the rename says so.
func sourceRenamed(src string, r event.Rename) (os.FileInfo, error) {
	if !r.Valid() {
		return nil, errNotRenamed
	}
	if _, err := os.Lstat(src + r.From); !errors.Is(err, os.ErrNotExist) {
		return nil, errNotRenamed
	}
	st, err := os.Lstat(src + r.To)
	if err != nil {
		return nil, err
	}
	if st.IsDir() != r.Dir {
		return nil, errNotRenamed
	}
	return st, nil
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
	out := p.Runner.Run(ctx, rsync.Run{Binary: p.Binary, Args: args, Env: p.Env, Stdin: stdin})
	if out.Exit != 0 && p.Warnf != nil {
		p.Warnf("rename of %s to %s on %s: rsync exit %d (%s); sending it the plain way", r.From, r.To, t.Spec, out.Exit, lastLines(out.Stderr, 2))
	}
	return out.Exit == 0, out.Bytes
}
