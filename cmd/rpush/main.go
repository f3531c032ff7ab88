// Command rpush runs rsync for each batch (or event) it reads, to one or
// more targets in parallel; what fails goes to a durable spool that
// failreplay replays. See man/rpush.1.
package main

import "github.com/inopipe/inopipe/internal/base"

func main() { base.Main(newApp(), base.ExitUsage) }
