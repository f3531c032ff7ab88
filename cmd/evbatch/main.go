// Command evbatch debounces and coalesces an event stream into batches
// for rpush. See man/evbatch.1.
package main

import "github.com/inopipe/inopipe/internal/base"

func main() { base.Main(newApp(), base.ExitUsage) }
