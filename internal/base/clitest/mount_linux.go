//go:build linux

package clitest

import (
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size (e.g. "64k") on dir for the test, or
// skips the test where mounting is not allowed (not root, no
// CAP_SYS_ADMIN): the cases that need a real mount (a full filesystem, an
// unmounted sub-mount, a filesystem over the source root) are root-only.
func MountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := unix.Mount("inopipe-test", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v): this case needs root", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}
