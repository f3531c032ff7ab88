// Command sersync2inopipe reads a sersync confxml.xml (format 2.5) and
// prints the equivalent inopipe configuration: an /etc/inopipe/NAME.env
// for inopipe-run and the inopipe@ unit, plus timer/cron lines for
// failreplay, warning on what has no equivalent. See
// man/sersync2inopipe.1.
package main

import "github.com/inopipe/inopipe/internal/base"

func main() { base.Main(newApp(), base.ExitUsage) }
