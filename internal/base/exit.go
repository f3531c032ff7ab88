package base

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit statuses: one table for every inopipe tool. A tool uses the subset
// it needs (WithExitStatus) and its man page's EXIT STATUS lists the same
// codes (clitest.CheckManPage checks). inowait alone keeps inotifywait's
// codes instead, so that scripts written for inotifywait keep working:
// 0 an event, 1 an error or bad usage, 2 the timeout passed.
const (
	ExitOK       = 0 // done: everything was handled
	ExitError    = 1 // a runtime failure (I/O, a stopped source, something lost)
	ExitUsage    = 2 // a bad command line
	ExitBadInput = 3 // --strict: a malformed input line
	ExitPartial  = 4 // work waits in the spool (rpush spooled batches; failreplay left entries)
	ExitLocked   = 5 // another process holds the spool lock; nothing was done
)

// Status is one line of a tool's EXIT STATUS: a code from the table above
// and what it means for that tool.
type Status struct {
	Code    int
	Meaning string
}

// WithExitStatus appends the tool's EXIT STATUS table to app's description
// (so --help shows it), records it for the man-page test, and returns app.
func WithExitStatus(statuses []Status, app *cli.App) *cli.App {
	var b strings.Builder
	b.WriteString("\n\nEXIT STATUS:")
	for _, s := range statuses {
		fmt.Fprintf(&b, "\n   %d  %s", s.Code, s.Meaning)
	}
	app.Description = strings.TrimRight(app.Description, "\n") + b.String()
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata["exit"] = statuses
	return app
}
