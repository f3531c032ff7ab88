// Command evfilter filters an inowait event stream: regex excludes and
// includes, event types, editor and tool temp files. See man/evfilter.1.
package main

import (
	"context"
	"os"

	"github.com/inopipe/inopipe/internal/base"
)

func main() {
	ctx, stop := base.SignalContext(context.Background())
	code := base.Run(ctx, newApp(), os.Args, exitUsage)
	stop()
	os.Exit(code)
}
