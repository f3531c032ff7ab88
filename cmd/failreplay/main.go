// Command failreplay replays the batches rpush spooled (from cron or a
// systemd timer) and performs the periodic full sync. See
// man/failreplay.1.
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
