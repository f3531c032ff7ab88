// Command evfilter filters an inowait event stream: regex excludes and
// includes, event types, editor and tool temp files. See man/evfilter.1.
package main

import "github.com/inopipe/inopipe/internal/base"

func main() { base.Main(newApp(), base.ExitUsage) }
