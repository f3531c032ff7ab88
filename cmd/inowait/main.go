// Command inowait watches files and directory trees with inotify and prints
// one JSON line per event (or inotifywait's own text with --format/-c).
// See man/inowait.1.
package main

import "github.com/inopipe/inopipe/internal/base"

func main() { base.Main(newApp(), exitError) }
