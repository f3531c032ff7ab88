// Command failreplay replays the batches rpush spooled (from cron or a
// systemd timer) and performs the periodic full sync. See
// man/failreplay.1.
package main

import "github.com/inopipe/inopipe/internal/base"

func main() { base.Main(newApp(), base.ExitUsage) }
