// Command inowait watches files and directory trees with inotify and prints
// one JSON line per event (or inotifywait's own text with --format/-c).
// See man/inowait.1.
package main

import (
	"context"
	"os"

	"github.com/inopipe/inopipe/internal/base"
)

func main() {
	ctx, stop := base.SignalContext(context.Background())
	code := base.Run(ctx, newApp(), os.Args, exitError)
	stop()
	os.Exit(code)
}
