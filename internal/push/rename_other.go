//go:build !linux

package push

import (
	"errors"
	"os"

	"github.com/inopipe/inopipe/internal/event"
)

// renameLocal needs openat2(2): elsewhere a local target gets the plain
// sync and delete.
func renameLocal(string, event.Rename, os.FileInfo) error { return errors.ErrUnsupported }
