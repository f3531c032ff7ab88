// Command evbatch debounces and coalesces an event stream into batches
// for rpush. See man/evbatch.1.
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
