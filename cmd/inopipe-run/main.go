// Command inopipe-run supervises one inopipe pipeline configured by an env
// file; see inopipe-run(8).
package main

import (
	"context"
	"os"

	"github.com/inopipe/inopipe/internal/base"
)

func main() {
	// No base.SignalContext: the supervisor handles SIGINT, SIGTERM and
	// SIGHUP itself (first: ordered stop; second: stop every stage now).
	os.Exit(base.Run(context.Background(), newApp(), os.Args, base.ExitUsage))
}
